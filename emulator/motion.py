"""Reference motions: model joint trajectories at a known frame rate.

A :class:`ReferenceMotion` holds full-model ``qpos [time, nq]`` in the model's own coordinates
(joint angles in rad, root position in m, root quaternion w-x-y-z), the frame rate, whether the
motion is a cycle, and where it came from. Everything the tracking environment needs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import mujoco
import numpy as np

from .models import MuscleModel

__all__ = ["MotionError", "ReferenceMotion", "elbow_flexion_cycle", "standing_motion"]


class MotionError(ValueError):
    """A motion is malformed or does not fit the model; the message names the source."""


@dataclass(frozen=True)
class ReferenceMotion:
    """A reference trajectory in model coordinates.

    Attributes:
        name: short name (``"elbow_flexion"``, ``"walk"``).
        model: name of the model whose coordinates ``qpos`` is in.
        joint_names: names of the model's joints, in model order (columns are MuJoCo qpos).
        qpos: ``[time, nq]`` generalized positions.
        fps: frames per second.
        loop: True when the last frame flows back into the first (a cycle).
        source: free-text provenance (file, generator, licence).
        meta: extra provenance as JSON-serialisable values.
    """

    name: str
    model: str
    joint_names: tuple[str, ...]
    qpos: np.ndarray = field(repr=False)
    fps: float
    loop: bool = False
    source: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        q = np.asarray(self.qpos, dtype=float)
        if q.ndim != 2 or q.shape[0] < 2:
            raise MotionError(f"{self.source or self.name}: need qpos [time >= 2, nq], got {q.shape}")
        bad = np.argwhere(~np.isfinite(q))
        if bad.size:
            f, c = bad[0]
            raise MotionError(f"{self.source or self.name}: NaN/inf at frame {f}, qpos column {c}")
        if not self.fps > 0:
            raise MotionError(f"{self.source or self.name}: fps must be > 0, got {self.fps}")
        object.__setattr__(self, "qpos", q)

    @property
    def n_frames(self) -> int:
        return self.qpos.shape[0]

    @property
    def duration_s(self) -> float:
        """Duration: (n_frames - 1) / fps, or n_frames / fps for a cycle (it wraps)."""
        return (self.n_frames if self.loop else self.n_frames - 1) / self.fps

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.qpos).tobytes())
        h.update(json.dumps([self.fps, self.loop, list(self.joint_names)]).encode())
        return h.hexdigest()[:16]

    def check_model(self, model: MuscleModel) -> None:
        """Raise :class:`MotionError` unless this motion is in ``model``'s coordinates."""
        m = model.mj_model
        if self.qpos.shape[1] != m.nq:
            raise MotionError(
                f"{self.source or self.name}: motion has {self.qpos.shape[1]} qpos columns, "
                f"model {model.name!r} has nq={m.nq}"
            )
        names = tuple(m.joint(j).name for j in range(m.njnt))
        if tuple(self.joint_names) != names:
            missing = sorted(set(self.joint_names) - set(names))
            raise MotionError(
                f"{self.source or self.name}: joints do not match model {model.name!r}"
                + (f" (not in model: {missing[:5]})" if missing else "")
            )

    def resample(self, model: MuscleModel, fps: float) -> ReferenceMotion:
        """Resample to ``fps`` by interpolation (quaternions: normalised lerp)."""
        if np.isclose(fps, self.fps):
            return self
        n = self.n_frames
        src_t = np.arange(n + (1 if self.loop else 0)) / self.fps
        q = self.qpos
        if self.loop:  # the cycle wraps to its first frame, shifted by one cycle's displacement
            wrap = _apply_offset(model, self.qpos[0], _cycle_offset(model, self.qpos))
            q = np.vstack([self.qpos, wrap[None]])
        t_end = src_t[-1]
        m_new = int(np.floor(t_end * fps + 1e-9)) + (0 if self.loop else 1)
        new_t = np.arange(m_new) / fps
        out = np.empty((m_new, q.shape[1]))
        for c in range(q.shape[1]):
            out[:, c] = np.interp(new_t, src_t, q[:, c])
        _normalise_quats(model.mj_model, out)
        return ReferenceMotion(
            self.name, self.model, self.joint_names, out, fps, self.loop, self.source, dict(self.meta)
        )


def _quat_slices(m: mujoco.MjModel) -> list[slice]:
    out = []
    for j in range(m.njnt):
        a = int(m.jnt_qposadr[j])
        if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
            out.append(slice(a + 3, a + 7))
        elif m.jnt_type[j] == mujoco.mjtJoint.mjJNT_BALL:
            out.append(slice(a, a + 4))
    return out


def _normalise_quats(m: mujoco.MjModel, q: np.ndarray) -> None:
    for s in _quat_slices(m):
        q[:, s] /= np.linalg.norm(q[:, s], axis=1, keepdims=True)


def _free_root_adr(model: MuscleModel) -> int | None:
    m = model.mj_model
    if model.root_kind == "free":
        return int(m.jnt_qposadr[m.joint(model.root_joints[0]).id])
    return None


def _cycle_offset(model: MuscleModel, qpos: np.ndarray) -> np.ndarray:
    """Horizontal root displacement of one cycle (x, y), extrapolated to the wrap-around."""
    a = _free_root_adr(model)
    if a is None or qpos.shape[0] < 2:
        return np.zeros(2)
    n = qpos.shape[0]
    return (qpos[-1, a : a + 2] - qpos[0, a : a + 2]) * n / (n - 1)


def _apply_offset(model: MuscleModel, q: np.ndarray, offset_xy: np.ndarray) -> np.ndarray:
    q = np.array(q, dtype=float)
    a = _free_root_adr(model)
    if a is not None:
        q[a : a + 2] += offset_xy
    return q


def _min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile on s in [0, 1]: 10 s^3 - 15 s^4 + 6 s^5."""
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def elbow_flexion_cycle(
    model: MuscleModel,
    *,
    period_s: float = 2.0,
    low_deg: float = 30.0,
    high_deg: float = 100.0,
    fps: float = 100.0,
    joint: str = "r_elbow_flex",
) -> ReferenceMotion:
    """An analytic flexion-extension cycle: minimum-jerk from ``low`` to ``high`` and back.

    Other joints hold ``qpos0``. Not measured data: generated, and its provenance says so.
    """
    jt = model.joint(joint)
    lo, hi = np.radians(low_deg), np.radians(high_deg)
    if jt.limited and not (jt.range[0] <= lo < hi <= jt.range[1]):
        raise MotionError(
            f"elbow cycle {low_deg}-{high_deg} deg outside {joint} range "
            f"{np.degrees(jt.range[0]):.1f}-{np.degrees(jt.range[1]):.1f} deg"
        )
    n = int(round(period_s * fps))
    t = np.arange(n) / fps
    half = period_s / 2
    up = t < half
    s = np.where(up, t / half, (t - half) / half)
    angle = np.where(up, lo + (hi - lo) * _min_jerk(s), hi - (hi - lo) * _min_jerk(s))
    m = model.mj_model
    q = np.tile(m.qpos0, (n, 1))
    q[:, jt.qpos_index] = angle
    return ReferenceMotion(
        name="elbow_flexion",
        model=model.name,
        joint_names=tuple(m.joint(j).name for j in range(m.njnt)),
        qpos=q,
        fps=fps,
        loop=True,
        source="generated: minimum-jerk elbow flexion-extension cycle (analytic, not measured)",
        meta={"period_s": period_s, "low_deg": low_deg, "high_deg": high_deg, "joint": joint},
    )


def standing_motion(model: MuscleModel, *, duration_s: float = 1.0, fps: float = 100.0) -> ReferenceMotion:
    """The model's standing keyframe (or ``qpos0``) held still."""
    m = model.mj_model
    n = max(2, int(round(duration_s * fps)))
    return ReferenceMotion(
        name="standing",
        model=model.name,
        joint_names=tuple(m.joint(j).name for j in range(m.njnt)),
        qpos=np.tile(model.standing_qpos, (n, 1)),
        fps=fps,
        loop=True,
        source="generated: model standing keyframe held still",
    )
