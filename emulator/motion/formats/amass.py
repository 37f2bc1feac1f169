"""AMASS / SMPL-H / SMPL-X ``.npz`` pose files to joint positions.

AMASS stores body-model *parameters*, not positions: ``poses [N, 3 * J]`` (axis-angle per joint,
root first), ``trans [N, 3]`` (m), ``betas`` (shape), ``gender`` and ``mocap_framerate`` (or
``mocap_frame_rate``). Turning them into joint positions needs the SMPL-H / SMPL-X body-model
file of the right gender. Those files are licence-gated (register at smpl-x.is.tue.mpg.de or
mano.is.tue.mpg.de): this tool never downloads them, the user passes the path.

The body model is read from its ``.npz`` form (keys ``v_template [V, 3]``, ``shapedirs
[V, 3, B]``, ``J_regressor [J, V]``, ``kintree_table [2, J]``); joint rest positions are
``J_regressor @ (v_template + shapedirs @ betas)`` and forward kinematics chains the
axis-angle rotations. Pose-dependent blend shapes move the surface, not the joints, so they are
not needed. AMASS worlds are z up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emulator.motion.formats.base import FormatError, MarkerSet

__all__ = ["SMPL_JOINT_NAMES", "read_amass"]

# The 22 body joints shared by SMPL, SMPL-H and SMPL-X, in kinematic-tree order.
SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)  # fmt: skip

_NEED_BODY_MODEL = (
    "AMASS files hold pose parameters, not positions; turning them into joint positions needs the "
    "SMPL-H / SMPL-X body-model file (.npz, the gender the file names). Those files are licence-gated "
    "(register at https://smpl-x.is.tue.mpg.de or https://mano.is.tue.mpg.de) and are never downloaded "
    "by this tool: pass body_model=PATH (CLI: --body-model PATH)."
)


def _rodrigues(aa: np.ndarray) -> np.ndarray:
    """Axis-angle ``[..., 3]`` to rotation matrices ``[..., 3, 3]``."""
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = aa / np.where(theta > 1e-12, theta, 1.0)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    K = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def _load_npz(path: Path, what: str) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise FormatError(f"{path}: no such {what} file") from None
    except ValueError as e:
        raise FormatError(f"{path}: not a plain .npz {what} file ({e})") from None
    except Exception as e:  # zipfile.BadZipFile, EOFError on truncation
        raise FormatError(f"{path}: cannot read {what} .npz ({type(e).__name__}: {e})") from None


def _body_model(path: Path, n_betas: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(v_template [V,3], shapedirs [V,3,B], J_regressor [J,V], parents [J]) from a model .npz."""
    if path.suffix.lower() == ".pkl":
        raise FormatError(
            f"{path}: pickled SMPL models need chumpy; use the .npz release of the body model "
            "(SMPL-H/SMPL-X ship one) or convert the .pkl to .npz"
        )
    z = _load_npz(path, "body-model")
    for k in ("v_template", "shapedirs", "J_regressor", "kintree_table"):
        if k not in z:
            raise FormatError(f"{path}: body-model file lacks {k!r} (has {sorted(z)})")
    v = np.asarray(z["v_template"], dtype=float)
    sd = np.asarray(z["shapedirs"], dtype=float)
    jr = np.asarray(z["J_regressor"], dtype=float)
    kin = np.asarray(z["kintree_table"]).astype(np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or sd.shape[:2] != v.shape or jr.shape[1] != v.shape[0]:
        raise FormatError(
            f"{path}: inconsistent body model: v_template {v.shape}, shapedirs {sd.shape}, J_regressor {jr.shape}"
        )
    parents = kin[0].copy()
    parents[0] = -1
    return v, sd, jr, parents


def read_amass(path: str | Path, *, body_model: str | Path | None = None) -> MarkerSet:
    """Joint positions (``[time, joint, 3]``, m, z up) of an AMASS / SMPL-X pose ``.npz``."""
    path = Path(path)
    z = _load_npz(path, "AMASS motion")
    for k in ("poses", "trans"):
        if k not in z:
            raise FormatError(f"{path}: AMASS file lacks {k!r} (has {sorted(z)})")
    fps_key = "mocap_framerate" if "mocap_framerate" in z else "mocap_frame_rate"
    if fps_key not in z:
        raise FormatError(f"{path}: AMASS file lacks 'mocap_framerate' (has {sorted(z)})")
    if body_model is None:
        raise FormatError(f"{path}: {_NEED_BODY_MODEL}")
    poses = np.asarray(z["poses"], dtype=float)
    trans = np.asarray(z["trans"], dtype=float)
    betas = np.asarray(z.get("betas", np.zeros(10)), dtype=float).ravel()
    fps = float(np.asarray(z[fps_key]))
    if poses.ndim != 2 or poses.shape[1] % 3 or trans.shape != (poses.shape[0], 3):
        raise FormatError(
            f"{path}: poses must be [N, 3*J] and trans [N, 3]; got {poses.shape}, {trans.shape}"
        )
    v, sd, jr, parents = _body_model(Path(body_model), betas.size)
    n_joints = len(parents)
    if poses.shape[1] // 3 < n_joints:
        raise FormatError(
            f"{path}: poses hold {poses.shape[1] // 3} joints, body model {body_model} has {n_joints}"
        )
    nb = min(betas.size, sd.shape[2])
    rest = jr @ (v + sd[:, :, :nb] @ betas[:nb])  # [J, 3]
    R = _rodrigues(poses[:, : 3 * n_joints].reshape(-1, n_joints, 3))  # [T, J, 3, 3]
    T = poses.shape[0]
    g_rot = np.empty((T, n_joints, 3, 3))
    g_pos = np.empty((T, n_joints, 3))
    for j in range(n_joints):
        p = parents[j]
        if p < 0:
            g_rot[:, j] = R[:, j]
            g_pos[:, j] = rest[j] + trans
        else:
            if p >= j:
                raise FormatError(f"{body_model}: kintree parent {p} of joint {j} is not before it")
            g_rot[:, j] = g_rot[:, p] @ R[:, j]
            g_pos[:, j] = g_pos[:, p] + np.einsum("tij,j->ti", g_rot[:, p], rest[j] - rest[p])
    names = tuple(SMPL_JOINT_NAMES[j] if j < len(SMPL_JOINT_NAMES) else f"joint{j}" for j in range(n_joints))
    gender = str(np.asarray(z.get("gender", "unknown")))
    meta = {"format": "amass", "up": "z", "gender": gender, "body_model": str(body_model), "n_betas": nb}
    return MarkerSet(names, g_pos, fps, str(path), meta)
