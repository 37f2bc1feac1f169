"""Small shared types: the named signals every physics backend returns, with their units.

Shapes use ``B`` for the batch of environments. Arrays are numpy on the ``cpu`` backend and
JAX arrays on the ``mjx`` backend; both follow the same layout.
"""

from __future__ import annotations

from typing import Any, NamedTuple

Array = Any  # numpy.ndarray or jax.Array


class Signals(NamedTuple):
    """Named per-environment signals of one physics step.

    Timing follows MuJoCo: ``qpos``, ``qvel`` and ``activation`` are the state *after* the
    step; quantities MuJoCo derives from the state (muscle force/length/velocity, body poses,
    contact forces) are those computed during the (last sub)step, i.e. at its start.
    """

    qpos: Array  # [B, nq] generalized positions (rad / m; free joints: pos + quat wxyz)
    qvel: Array  # [B, nv] generalized velocities (rad/s, m/s)
    excitation: Array  # [B, muscle] neural excitation = ctrl, in [0, 1]
    activation: Array  # [B, muscle] muscle activation = act, in [0, 1]
    muscle_force: Array  # [B, muscle] muscle tension, N (positive when pulling)
    muscle_length: Array  # [B, muscle] actuator (musculotendon) length, m
    muscle_velocity: Array  # [B, muscle] actuator lengthening velocity, m/s
    body_pos: Array  # [B, body, 3] world positions of tracked bodies, m
    body_quat: Array  # [B, body, 4] world orientations of tracked bodies (w, x, y, z)
    grf: Array  # [B, foot, 3] ground reaction force on each foot (left, right), world frame, N
    cop: Array  # [B, foot, 3] centre of pressure of each foot's contacts, world frame, m (NaN: no contact)


SIGNAL_UNITS: dict[str, str] = {
    "qpos": "rad or m",
    "qvel": "rad/s or m/s",
    "excitation": "1",
    "activation": "1",
    "muscle_force": "N",
    "muscle_length": "m",
    "muscle_velocity": "m/s",
    "body_pos": "m",
    "body_quat": "1",
    "grf": "N",
    "cop": "m",
}

# the foot order and the rollout tables live in the one schema table
from emulator.schema import FOOT_ORDER, ROLLOUT_DIMS, ROLLOUT_UNITS  # noqa: E402, F401


class Servo(NamedTuple):
    """The muscle-length PD law's constant gains: ``e = clip(kp (L - L*) / span + kd dL/dt /
    span, 0, 1)`` (a muscle longer than its target, or lengthening, is excited)."""

    kp: float
    kd: float
    span: Array  # [muscle] each muscle's length range (actuator_lengthrange), m


def pd_excitation(servo: Servo, length, velocity, target, xp):
    """The PD law's excitations ``[..., muscle]`` for lengths, velocities and target lengths
    ``[..., muscle]`` (``xp``: numpy or jax.numpy). The one definition every caller uses."""
    drive = servo.kp * (length - target) / servo.span + servo.kd * velocity / servo.span
    return xp.clip(drive, 0.0, 1.0)
