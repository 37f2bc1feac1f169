"""The reference a tracking environment follows: the motion resampled to the control rate with
its forward kinematics and muscle lengths precomputed (:class:`Reference`), and the quaternion
helpers the environment's errors and observations use (wxyz, jax)."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import mujoco
import numpy as np

from emulator.models import MuscleModel
from emulator.motion.reference import ReferenceMotion, _cycle_offset

__all__ = ["Reference", "build_reference", "quat_angle", "quat_conj", "quat_mul", "quat_rotate_inv"]


@dataclass(frozen=True)
class Reference:
    """The motion resampled to the control rate, with forward kinematics precomputed."""

    qpos: np.ndarray  # [T, nq]
    qvel: np.ndarray  # [T, nv]
    body_pos: np.ndarray  # [T, body, 3] world
    body_quat: np.ndarray  # [T, body, 4]
    offset: np.ndarray  # [3] root displacement per cycle (x, y, 0)
    loop: bool
    muscle_length: np.ndarray  # [T, muscle] musculotendon lengths of the reference pose (m)


def build_reference(model: MuscleModel, motion: ReferenceMotion, fps: float) -> Reference:
    """``motion`` on ``model`` at ``fps`` frames per second (whole cycles for a loop), with
    velocities by differences to the next frame (across the wrap for a loop)."""
    motion.check_model(model)
    mot = motion.resample(model, fps, whole_cycle=True)  # the env steps through whole cycles
    m = model.mj_model
    q = mot.qpos
    n = q.shape[0]
    dt = 1.0 / fps
    offset = np.zeros(3)
    if mot.loop:
        offset[:2] = _cycle_offset(model, q)
    qvel = np.zeros((n, m.nv))
    for i in range(n):
        if i + 1 < n:
            nxt = q[i + 1]
        elif mot.loop:
            nxt = q[0].copy()
            if model.root_kind == "free":
                a = model.free_root_qpos
                nxt[a : a + 2] += offset[:2]
        else:
            nxt = None
        if nxt is None:
            qvel[i] = qvel[i - 1]
        else:
            mujoco.mj_differentiatePos(m, qvel[i], dt, q[i], nxt)
    d = mujoco.MjData(m)
    ids = [m.body(b).id for b in model.tracked_bodies]
    bpos = np.zeros((n, len(ids), 3))
    bquat = np.zeros((n, len(ids), 4))
    length = np.zeros((n, m.nu))
    for i in range(n):
        d.qpos[:] = q[i]
        mujoco.mj_fwdPosition(m, d)  # kinematics and the muscles' transmission lengths
        bpos[i] = d.xpos[ids]
        bquat[i] = d.xquat[ids]
        length[i] = d.actuator_length
    return Reference(q, qvel, bpos, bquat, offset, mot.loop, length)


def quat_mul(a, b):
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return jnp.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conj(q):
    return q * jnp.array([1.0, -1.0, -1.0, -1.0])


def quat_rotate_inv(q, v):
    """Rotate world vector ``v`` into the frame of unit quaternion ``q``."""
    qv = jnp.concatenate([jnp.zeros(v.shape[:-1] + (1,)), v], axis=-1)
    return quat_mul(quat_mul(quat_conj(q), qv), q)[..., 1:]


def quat_angle(a, b):
    """Angle (rad) of the rotation taking unit quaternion ``b`` to ``a``."""
    dot = jnp.abs(jnp.sum(a * b, axis=-1))
    return 2.0 * jnp.arccos(jnp.clip(dot, 0.0, 1.0))
