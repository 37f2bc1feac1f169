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

FOOT_ORDER = ("left", "right")


# rollout series (emulator.learning.rollout) -> (units, long name); the store (diversity.store) uses the
# same names and units
ROLLOUT_UNITS = {
    "excitation": ("1", "muscle excitation (control), 0-1"),
    "activation": ("1", "muscle activation, 0-1"),
    "muscle_force": ("N", "muscle tension (positive when pulling)"),
    "muscle_length": ("m", "muscle-tendon actuator length"),
    "muscle_velocity": ("m/s", "muscle-tendon actuator lengthening velocity"),
    "joint_angle": ("rad", "tracked joint angle (m for slide joints)"),
    "joint_velocity": ("rad/s", "tracked joint velocity (m/s for slide joints)"),
    "reference_joint_angle": ("rad", "reference joint angle"),
    "root_position": ("m", "root position, world frame"),
    "root_orientation": ("1", "root orientation quaternion w-x-y-z, world frame"),
    "reference_root_position": ("m", "reference root position, world frame"),
    "grf": ("N", "ground reaction force on each foot, world frame"),
    "cop": ("m", "centre of pressure of each foot's floor contacts, world frame (NaN: no contact)"),
    "tracking_error": ("mixed", "tracking-error vector (rad, rad/s, m, m/s per component)"),
    "metrics": ("mixed", "tracking metrics (deg, deg, cm, cm)"),
    "terminated": ("1", "the environment's termination test fired at this step"),
}

# rollout series -> dimension names (a model without a free root or feet lacks root_*/grf)
ROLLOUT_DIMS = {
    "excitation": ("seed", "time", "muscle"),
    "activation": ("seed", "time", "muscle"),
    "muscle_force": ("seed", "time", "muscle"),
    "muscle_length": ("seed", "time", "muscle"),
    "muscle_velocity": ("seed", "time", "muscle"),
    "joint_angle": ("seed", "time", "joint"),
    "joint_velocity": ("seed", "time", "joint"),
    "reference_joint_angle": ("time", "joint"),
    "root_position": ("seed", "time", "axis"),
    "root_orientation": ("seed", "time", "quaternion"),
    "reference_root_position": ("time", "axis"),
    "grf": ("seed", "time", "foot", "axis"),
    "cop": ("seed", "time", "foot", "axis"),
    "tracking_error": ("seed", "time", "component"),
    "metrics": ("seed", "time", "metric"),
    "terminated": ("seed", "time"),
}
