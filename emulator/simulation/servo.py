"""The hand-built layer between a policy's action and the muscles' excitations, besides the PD law
itself (:mod:`emulator.simulation.signals`): the synergy basis that spreads a few actions over
many muscles, and the balance reflex that shifts the PD law's reference lengths so the swing
leg steps towards where the body is falling.

The balance reflex (``EnvConfig.balance_reflex``) is SIMBICON's foot-placement feedback
(Yin, Loken and van de Panne 2007: the swing hip's target angle moves in proportion to the
centre of mass's offset and velocity) written in muscle lengths, the servo's own language.
With ``e`` the root's extrapolated horizontal error (Δ's ``root_xcom`` as a vector: position
error + velocity error x sqrt(h/g)) and ``k`` the gain, the swing foot should land ``k e``
further along; the joint offsets that move the swing foot by that much at the reference pose
are ``dq = J^T (J J^T + l^2 I)^-1 k e`` (``J = d foot_xy / dq`` of the reflex joints of that
leg, damped least squares with ``l = REFLEX_DAMPING_M``) and the muscles' reference lengths
change by ``dL = (dL / dq) dq`` (their moment arms). Everything but ``e`` depends only on the
reference frame, so it is one table ``[frame, muscle, 2]`` built once from the reference
poses; the env multiplies it by ``e`` at every control step. A leg counts as swinging by how
high its foot is above its own lowest point of the cycle (``REFLEX_SWING_RAMP_M``), so the
stance leg's targets (and so the policy's stance) are left alone.
"""

from __future__ import annotations

import jax.numpy as jnp
import mujoco
import numpy as np

from emulator.models import MuscleModel

__all__ = [
    "REFLEX_DAMPING_M",
    "REFLEX_MAX_ERROR_M",
    "REFLEX_SWING_RAMP_M",
    "balance_reflex_table",
    "basis_matrix",
]

REFLEX_DAMPING_M = 0.1  # damped least squares: a foot that hardly moves with a joint asks little of it
REFLEX_MAX_ERROR_M = 0.1  # the extrapolated error the reflex answers at most (beyond it, a fall)
REFLEX_SWING_RAMP_M = (
    0.01,
    0.03,
)  # foot height above its lowest: stance below the first, swing above the second
_FD_STEP_RAD = 1e-4


def basis_matrix(model: MuscleModel, basis) -> np.ndarray | None:
    """``EnvConfig.action_basis`` as ``W [synergy, muscle]`` in the model's muscle order."""
    if basis is None:
        return None
    index = {name: i for i, name in enumerate(model.muscles)}
    w = np.zeros((len(basis), len(index)))
    for k, synergy in enumerate(basis):
        unknown = [name for name, _ in synergy if name not in index]
        if unknown:
            raise ValueError(
                f"action_basis[{k}] names muscles {model.name} does not have: {unknown[:5]}"
                f"{' ...' if len(unknown) > 5 else ''}"
            )
        for name, weight in synergy:
            w[k, index[name]] = weight
    return w


def reflex_joints(model: MuscleModel, joints) -> dict[str, list[str]]:
    """``{side: [joint, ...]}``: each reflex joint base name with the side's suffix (``_l`` /
    ``_r``); a ValueError names what the model lacks."""
    model.require_feet()
    names = {j.name for j in model.joints}
    out = {side: [f"{base}_{side[0]}" for base in joints] for side in ("left", "right")}
    missing = [n for side in out.values() for n in side if n not in names]
    if missing:
        raise ValueError(
            f"balance_reflex_joints: {model.name} has no joint(s) {missing} "
            f"(each base name takes the suffixes _l and _r)"
        )
    return out


def swing_weights(model: MuscleModel, qpos: np.ndarray) -> np.ndarray:
    """How much each foot swings at each reference pose ``[T, 2]`` (left, right), in [0, 1]:
    the height of the lowest body of the foot above its lowest over the poses, ramped over
    ``REFLEX_SWING_RAMP_M``."""
    m, d = model.mj_model, mujoco.MjData(model.mj_model)
    feet = []
    for side in ("left", "right"):
        tops = [m.body(b).id for b in model.feet[side]]
        feet.append([b for b in range(m.nbody) if _in_subtree(m, b, tops)])
    height = np.zeros((len(qpos), 2))
    for i, q in enumerate(qpos):
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        height[i] = [d.xpos[ids, 2].min() for ids in feet]
    lo, hi = REFLEX_SWING_RAMP_M
    return np.clip((height - height.min(axis=0) - lo) / (hi - lo), 0.0, 1.0)


def _in_subtree(m: mujoco.MjModel, body: int, tops: list[int]) -> bool:
    while body > 0:
        if body in tops:
            return True
        body = int(m.body_parentid[body])
    return False


def balance_reflex_table(model: MuscleModel, qpos: np.ndarray, joints) -> np.ndarray:
    """The reflex's length change per metre of extrapolated error ``G [T, muscle, 2]`` (m/m) at
    each reference pose ``qpos [T, nq]``, for a gain of 1: ``dL = G[f] @ e`` (see the module
    docstring). ``joints``: base names of the reflex joints (``EnvConfig.balance_reflex_joints``)."""
    m, d = model.mj_model, mujoco.MjData(model.mj_model)
    sides = reflex_joints(model, joints)
    swing = swing_weights(model, qpos)
    table = np.zeros((len(qpos), m.nu, 2))
    for s, side in enumerate(("left", "right")):
        foot = m.body(model.feet[side][0]).id
        addr = [int(m.jnt_qposadr[m.joint(n).id]) for n in sides[side]]
        for i, q in enumerate(qpos):
            if swing[i, s] == 0:
                continue
            jac = np.zeros((2, len(addr)))  # foot xy per rad
            dlen = np.zeros((m.nu, len(addr)))  # muscle lengths per rad
            for k, a in enumerate(addr):
                ends = []
                for h in (_FD_STEP_RAD, -_FD_STEP_RAD):
                    d.qpos[:] = q
                    d.qpos[a] += h
                    mujoco.mj_fwdPosition(m, d)  # kinematics and the muscles' lengths
                    ends.append((d.xpos[foot, :2].copy(), d.actuator_length.copy()))
                jac[:, k] = (ends[0][0] - ends[1][0]) / (2 * _FD_STEP_RAD)
                dlen[:, k] = (ends[0][1] - ends[1][1]) / (2 * _FD_STEP_RAD)
            solve = jac.T @ np.linalg.inv(jac @ jac.T + REFLEX_DAMPING_M**2 * np.eye(2))  # [joint, 2]
            table[i] += swing[i, s] * dlen @ solve
    return table


def reflex_shift(table, error):
    """The reference-length shift ``[B, muscle]`` (m) of the reflex rows ``table [B, muscle, 2]``
    (a gain times :func:`balance_reflex_table` at each env's frame) for extrapolated errors
    ``error [B, 2]`` (m), their length capped at ``REFLEX_MAX_ERROR_M``."""
    norm = jnp.linalg.norm(error, axis=-1, keepdims=True)
    capped = error * jnp.minimum(1.0, REFLEX_MAX_ERROR_M / jnp.maximum(norm, 1e-9))
    return jnp.einsum("bmk,bk->bm", table, capped.astype(table.dtype))
