"""Reference motions: model joint trajectories at a known frame rate.

A :class:`ReferenceMotion` holds full-model ``qpos [time, nq]`` in the model's own coordinates
(joint angles in rad, root position in m, root quaternion w-x-y-z), the frame rate, whether the
motion is a cycle, and where it came from. Everything the tracking environment needs.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from emulator.models import MuscleModel

__all__ = [
    "MOTION_FORMAT",
    "MotionError",
    "ReferenceMotion",
    "apply_joint_couplings",
    "elbow_flexion_cycle",
    "from_joint_values",
    "standing_motion",
]


class MotionError(ValueError):
    """A motion is malformed or does not fit the model; the message names the source."""


MOTION_FORMAT = "ms-diversity-motion/1"


@dataclass(frozen=True)
class ReferenceMotion:
    """A reference trajectory in model coordinates.

    Attributes:
        name: short name (``"elbow_flexion"``, ``"walk"``).
        model: name of the model whose coordinates ``qpos`` is in.
        joint_names: names of the model's joints, in model order (columns are MuJoCo qpos).
        qpos: ``[time, nq]`` generalized positions (rad, m; free-root quaternions w-x-y-z).
        fps: frames per second.
        loop: True when the last frame flows back into the first (a cycle).
        source: free-text provenance (file, generator, licence).
        meta: extra provenance as JSON-serialisable values.
        qvel: optional ``[time, nv]`` velocities as measured; ``None``: finite differences
            (:meth:`velocities`).
    """

    name: str
    model: str
    joint_names: tuple[str, ...]
    qpos: np.ndarray = field(repr=False)
    fps: float
    loop: bool = False
    source: str = ""
    meta: dict = field(default_factory=dict, repr=False)
    qvel: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        where = self.source or self.name
        q = np.asarray(self.qpos, dtype=float)
        if q.ndim != 2 or q.shape[0] < 2:
            raise MotionError(f"{where}: need qpos [time >= 2 frames, nq], got shape {q.shape}")
        bad = np.argwhere(~np.isfinite(q))
        if bad.size:
            f, c = bad[0]
            raise MotionError(f"{where}: NaN/inf at frame {f}, qpos column {c}")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise MotionError(f"{where}: fps must be > 0, got {self.fps}")
        object.__setattr__(self, "qpos", q)
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        if self.qvel is not None:
            v = np.asarray(self.qvel, dtype=float)
            if v.ndim != 2 or v.shape[0] != q.shape[0] or not np.all(np.isfinite(v)):
                raise MotionError(f"{where}: qvel must be finite [time={q.shape[0]}, nv], got {v.shape}")
            object.__setattr__(self, "qvel", v)

    def _replace(self, **changes) -> ReferenceMotion:
        kw = {f: getattr(self, f) for f in self.__dataclass_fields__}
        kw["meta"] = dict(self.meta)
        kw.update(changes)
        return ReferenceMotion(**kw)

    @property
    def n_frames(self) -> int:
        return self.qpos.shape[0]

    @property
    def duration_s(self) -> float:
        """Duration: (n_frames - 1) / fps, or n_frames / fps for a cycle (it wraps)."""
        return (self.n_frames if self.loop else self.n_frames - 1) / self.fps

    @property
    def time(self) -> np.ndarray:
        """``[time]`` seconds from the first frame."""
        return np.arange(self.n_frames) / self.fps

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
        if self.qvel is not None and self.qvel.shape[1] != m.nv:
            raise MotionError(
                f"{self.source or self.name}: qvel has {self.qvel.shape[1]} columns, model nv={m.nv}"
            )

    def check_ranges(
        self, model: MuscleModel, on_violation: str = "fail", tol_deg: float = 0.5
    ) -> ReferenceMotion:
        """Check hinge/slide values against the model's joint ranges.

        Args:
            on_violation: ``"fail"`` raises :class:`MotionError` naming the joint, frame and
                value; ``"clip"`` clips into range with a warning; ``"warn"`` only warns.
            tol_deg: slack before a value counts as outside (rad-equivalent for hinges, mm*10
                for slides: 0.5 deg or 0.5 cm).
        Returns:
            this motion, or a clipped copy.
        """
        if on_violation not in ("fail", "clip", "warn"):
            raise ValueError(f"on_violation must be 'fail', 'clip' or 'warn', got {on_violation!r}")
        self.check_model(model)
        q = self.qpos.copy()
        problems = []
        for jt in model.joints:
            if not jt.limited:
                continue
            tol = np.radians(tol_deg) if jt.angular else tol_deg / 100
            col = q[:, jt.qpos_index]
            lo, hi = jt.range
            out = np.where((col < lo - tol) | (col > hi + tol))[0]
            if out.size:
                f = int(out[np.argmax(np.maximum(lo - col[out], col[out] - hi))])
                conv = np.degrees if jt.angular else (lambda x: x)
                unit = "deg" if jt.angular else "m"
                problems.append(
                    f"{jt.name} = {conv(col[f]):.1f} {unit} at frame {f} (t={f / self.fps:.3f} s) outside "
                    f"[{conv(lo):.1f}, {conv(hi):.1f}] {unit} ({out.size} frames)"
                )
                q[:, jt.qpos_index] = np.clip(col, lo, hi)
        if not problems:
            return self
        msg = f"{self.source or self.name}: outside model {model.name!r} joint ranges: " + "; ".join(
            problems[:6]
        )
        if len(problems) > 6:
            msg += f"; and {len(problems) - 6} more joints"
        if on_violation == "fail":
            raise MotionError(msg + " (pass on_violation='clip' to clip)")
        warnings.warn(msg + (" (clipped)" if on_violation == "clip" else ""), stacklevel=2)
        if on_violation == "warn":
            return self
        apply_joint_couplings(model, q)
        # a clipped driver can still carry a coupled follower past the follower's own (narrower)
        # range (myofullbody's lumbar joints): clip those too; MuJoCo's limit wins over the
        # equality in simulation as well
        for jt in model.joints:
            if jt.limited:
                q[:, jt.qpos_index] = np.clip(q[:, jt.qpos_index], *jt.range)
        return self._replace(qpos=q, qvel=None, meta=dict(self.meta, clipped_joints=len(problems)))

    def velocities(self, model: MuscleModel) -> np.ndarray:
        """``[time, nv]`` velocities: as given, else central finite differences of ``qpos``
        (wrapping around for a cycle, one-sided at the ends otherwise)."""
        if self.qvel is not None:
            return self.qvel
        m = model.mj_model
        q = self.qpos
        n = self.n_frames
        if self.loop:
            nxt = np.vstack([q[1:], _apply_offset(model, q[0], _cycle_offset(model, q))[None]])
            prv = np.vstack([_apply_offset(model, q[-1], -_cycle_offset(model, q))[None], q[:-1]])
            span = np.full(n, 2.0 / self.fps)
        else:
            nxt = np.vstack([q[1:], q[-1:]])
            prv = np.vstack([q[:1], q[:-1]])
            span = np.full(n, 2.0 / self.fps)
            span[0] = span[-1] = 1.0 / self.fps
        v = np.zeros((n, m.nv))
        for i in range(n):
            mujoco.mj_differentiatePos(m, v[i], span[i], prv[i], nxt[i])
        return v

    def root_trajectory(self, model: MuscleModel) -> tuple[np.ndarray, np.ndarray] | None:
        """``(position [time, 3] m, quaternion [time, 4] w-x-y-z)`` of a free root, else None."""
        a = _free_root_adr(model)
        if a is None:
            return None
        return self.qpos[:, a : a + 3].copy(), self.qpos[:, a + 3 : a + 7].copy()

    def slice(self, start: int = 0, stop: int | None = None) -> ReferenceMotion:
        """Frames ``start:stop`` (no longer a cycle)."""
        q = self.qpos[start:stop]
        if q.shape[0] < 2:
            raise MotionError(
                f"{self.source or self.name}: slice [{start}:{stop}] leaves {q.shape[0]} frames (< 2)"
            )
        v = None if self.qvel is None else self.qvel[start:stop]
        meta = dict(self.meta, sliced=[int(start), None if stop is None else int(stop)])
        return self._replace(qpos=q, qvel=v, loop=False, meta=meta)

    def between(self, t0: float, t1: float) -> ReferenceMotion:
        """Frames with ``t0 <= time <= t1`` seconds."""
        i0 = int(np.ceil(t0 * self.fps - 1e-9))
        i1 = int(np.floor(t1 * self.fps + 1e-9)) + 1
        return self.slice(max(i0, 0), min(i1, self.n_frames))

    def as_cycle(self, model: MuscleModel, *, drop_last: bool = False) -> ReferenceMotion:
        """This motion as a cycle with a matched seam.

        The wrap-around frame (one period after frame 0) is estimated by linear extrapolation
        of the last two frames; its mismatch to frame 0 is removed by a linear ramp over the
        cycle (horizontal root position excepted: that displacement is the cycle's progress).

        Args:
            drop_last: the last frame repeats the first (one period later), as in gait-cycle
                tables sampled 0-100 %; drop it before closing the seam.
        """
        self.check_model(model)
        q = self.qpos[:-1].copy() if drop_last else self.qpos.copy()
        n = q.shape[0]
        if n < 3:
            raise MotionError(f"{self.source or self.name}: a cycle needs at least 3 frames, got {n}")
        m = model.mj_model
        end = q[-1] + (q[-1] - q[-2])
        mismatch = end - q[0]
        a = _free_root_adr(model)
        if a is not None:
            mismatch[a : a + 2] = 0.0
        quats = _quat_slices(m)
        for s in quats:
            mismatch[s] = 0.0
        ramp = np.arange(n)[:, None] / n
        q -= ramp * mismatch[None]
        for s in quats:  # rotate each quaternion track by a growing share of its seam rotation
            qa = q[:, s]
            end_q = qa[-1] + (qa[-1] - qa[-2])
            end_q /= np.linalg.norm(end_q)
            err = np.zeros(3)
            rel = np.zeros(4)
            mujoco.mju_negQuat(rel, end_q)
            prod = np.zeros(4)
            mujoco.mju_mulQuat(prod, qa[0], rel)  # rotation taking the seam end onto frame 0
            mujoco.mju_quat2Vel(err, prod, 1.0)
            for i in range(n):
                corr = np.zeros(4)
                mujoco.mju_axisAngle2Quat(
                    corr, err / (np.linalg.norm(err) + 1e-12), np.linalg.norm(err) * i / n
                )
                out = np.zeros(4)
                mujoco.mju_mulQuat(out, corr, qa[i])
                q[i, s] = out
        _normalise_quats(m, q)
        apply_joint_couplings(model, q)
        seam = float(np.max(np.abs(np.delete(mismatch, [c for s in quats for c in range(s.start, s.stop)]))))
        meta = dict(self.meta, cycle_seam_max_abs=seam, cycle_dropped_last=drop_last)
        return self._replace(qpos=q, qvel=None, loop=True, meta=meta)

    def starting_at(self, model: MuscleModel, frame: int) -> ReferenceMotion:
        """The same cycle played from ``frame``: frames ``frame..n-1``, then ``0..frame-1``
        carried one cycle's horizontal root displacement on, the whole moved so the root starts
        where the cycle did (e.g. to start a stride cut between other events at the right heel
        strike, as the analyses' gait cycles do)."""
        self.check_model(model)
        if not self.loop:
            raise MotionError(f"{self.source or self.name}: only a cycle (loop) can start elsewhere")
        n = self.n_frames
        if not 0 <= frame < n:
            raise MotionError(f"{self.source or self.name}: start frame {frame} outside 0..{n - 1}")
        q = np.vstack([self.qpos[frame:], self.qpos[:frame]])
        a = _free_root_adr(model)
        if a is not None:  # the wrapped frames one stride on; the root starts where the cycle did
            q[n - frame :, a : a + 2] += _cycle_offset(model, self.qpos)
            q[:, a : a + 2] -= q[0, a : a + 2] - self.qpos[0, a : a + 2]
        return self._replace(qpos=q, qvel=None, meta=dict(self.meta, cycle_started_at_frame=int(frame)))

    def mirror(self, model: MuscleModel) -> ReferenceMotion:
        """The left-right mirror image: ``*_r`` and ``*_l`` joints swap values, unsided joints
        that rotate about a vertical or forward axis change sign, and the root is reflected in
        the model's sagittal plane (through the first frame's root position).

        Assumes, as OpenSim-derived models are built, that a left joint and its right partner use
        mirrored axes so that equal values are mirror-image poses. Raises :class:`MotionError` for
        a model without left/right joints.
        """
        self.check_model(model)
        m = model.mj_model
        pairs = _side_pairs(model)
        if not pairs:
            raise MotionError(
                f"model {model.name!r} has no left/right joint pairs (names ending _l/_r): cannot mirror"
            )
        d = mujoco.MjData(m)  # rest pose: joint axes and the lateral axis are read from it
        d.qpos[:] = m.qpos0
        mujoco.mj_kinematics(m, d)
        n_lat = _lateral_axis(model, d)
        M = np.eye(3) - 2 * np.outer(n_lat, n_lat)
        q = self.qpos.copy()
        out = q.copy()
        for a, b in pairs:
            out[:, a], out[:, b] = q[:, b], q[:, a]
        sided = {i for ab in pairs for i in ab}
        for jt in model.joints:
            if jt.qpos_index in sided or jt.name in model.root_joints:
                continue
            axis = d.xaxis[m.joint(jt.name).id]
            along = abs(float(axis @ n_lat))
            lateral = along > 0.9
            if not lateral and along > 0.1:
                raise MotionError(
                    f"model {model.name!r}: cannot mirror unsided joint {jt.name!r}: its axis is neither lateral "
                    "nor in the sagittal plane"
                )
            flip = (not lateral) if jt.angular else lateral
            if flip:
                out[:, jt.qpos_index] = -q[:, jt.qpos_index]
        a = _free_root_adr(model)
        if a is not None:
            p0 = q[0, a : a + 3]
            out[:, a : a + 3] = p0 + (q[:, a : a + 3] - p0) @ M.T
            for i in range(q.shape[0]):
                R = np.zeros(9)
                mujoco.mju_quat2Mat(R, q[i, a + 3 : a + 7])
                Rm = M @ R.reshape(3, 3) @ M
                qq = np.zeros(4)
                mujoco.mju_mat2Quat(qq, Rm.ravel())
                out[i, a + 3 : a + 7] = qq
        elif model.root_kind == "chain":
            raise MotionError(f"model {model.name!r}: mirroring a slide/hinge root chain is not supported")
        apply_joint_couplings(model, out)
        return self._replace(
            qpos=out, qvel=None, name=self.name + "_mirrored", meta=dict(self.meta, mirrored=True)
        )

    def resample(self, model: MuscleModel, fps: float, whole_cycle: bool = False) -> ReferenceMotion:
        """Resample to ``fps`` by interpolation (quaternions: normalised lerp).

        A loop's frames are ``1 / fps`` apart and the cycle ends where the next frame would pass
        its length (the last step to the wrap is then up to one frame short). With
        ``whole_cycle`` it gets ``round(length * fps)`` frames spread evenly over the cycle
        instead: no jump at the wrap, the cycle played up to half a frame slower or faster
        (what an environment stepping at ``fps`` needs)."""
        if np.isclose(fps, self.fps):
            return self
        n = self.n_frames
        src_t = np.arange(n + (1 if self.loop else 0)) / self.fps
        q = self.qpos
        if self.loop:  # the cycle wraps to its first frame, shifted by one cycle's displacement
            wrap = _apply_offset(model, self.qpos[0], _cycle_offset(model, self.qpos))
            q = np.vstack([self.qpos, wrap[None]])
        t_end = src_t[-1]
        if self.loop and whole_cycle:
            # a cycle of 1.04 s at 1/0.034 fps: 31 frames 33.5 ms of motion apart (1.3 % slower);
            # 30 frames 34 ms apart jumped 54 ms of motion, at 1.6x the velocity, at every wrap
            m_new = max(int(np.round(t_end * fps)), 1)
            new_t = np.arange(m_new) * (t_end / m_new)
        else:
            m_new = int(np.floor(t_end * fps + 1e-9)) + (0 if self.loop else 1)
            new_t = np.arange(m_new) / fps
        out = np.empty((m_new, q.shape[1]))
        for c in range(q.shape[1]):
            out[:, c] = np.interp(new_t, src_t, q[:, c])
        _normalise_quats(model.mj_model, out)
        apply_joint_couplings(model, out)  # coupled joints follow their drivers, not the lerp
        return self._replace(qpos=out, fps=float(fps), qvel=None)

    # ---- the project's .npz format -------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the project's ``.npz`` motion format (see the README, "Motion files")."""
        path = Path(path)
        arrays = {
            "format": np.array(MOTION_FORMAT),
            "name": np.array(self.name),
            "model": np.array(self.model),
            "joint_names": np.array(self.joint_names),
            "qpos": self.qpos,
            "fps": np.array(float(self.fps)),
            "loop": np.array(bool(self.loop)),
            "source": np.array(self.source),
            "meta": np.array(json.dumps(self.meta, sort_keys=True, default=_json_default)),
        }
        if self.qvel is not None:
            arrays["qvel"] = self.qvel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)
        return path

    @staticmethod
    def load(path: str | Path, model: MuscleModel | None = None) -> ReferenceMotion:
        """Read a ``.npz`` motion; with ``model``, map its joints onto that model by name.

        Two layouts are accepted: the full one written by :meth:`save` (``qpos`` + ``joint_names``
        + ``fps``), and a by-name one (``fps`` plus one array ``[time]`` per hinge/slide joint,
        named after the joint; needs ``model``).
        """
        path = Path(path)
        source = str(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise MotionError(f"{source}: no such motion file") from None
        except Exception as e:
            raise MotionError(f"{source}: not a readable .npz motion ({type(e).__name__}: {e})") from None
        if "fps" not in data:
            raise MotionError(f"{source}: motion .npz lacks 'fps' (has {sorted(data)})")
        fps = float(data["fps"])
        meta = json.loads(str(data["meta"])) if "meta" in data else {}
        name = str(data["name"]) if "name" in data else path.stem
        loop = bool(data["loop"]) if "loop" in data else False
        src = str(data["source"]) if "source" in data and str(data["source"]) else source
        meta.setdefault("file", source)
        if "qpos" in data:
            if "joint_names" not in data:
                raise MotionError(f"{source}: motion .npz has 'qpos' but no 'joint_names'")
            names = tuple(str(n) for n in data["joint_names"])
            qpos = np.asarray(data["qpos"], dtype=float)
            qvel = data.get("qvel")
            mot_model = str(data["model"]) if "model" in data else (model.name if model else "")
            mot = ReferenceMotion(name, mot_model, names, qpos, fps, loop, src, meta, qvel)
            if model is None:
                return mot
            model_names = tuple(model.mj_model.joint(j).name for j in range(model.mj_model.njnt))
            if names == model_names:
                mot = mot._replace(model=model.name)
                mot.check_model(model)
                return mot
            widths = [_qpos_width(model, n, source) for n in names]
            if sum(widths) != qpos.shape[1]:
                raise MotionError(
                    f"{source}: qpos has {qpos.shape[1]} columns, joints {names[:4]}... need {sum(widths)}"
                )
            cols = np.cumsum([0] + widths)
            values = {n: qpos[:, cols[i] : cols[i + 1]] for i, n in enumerate(names)}
        else:
            if model is None:
                raise MotionError(f"{source}: a by-joint-name motion .npz needs a model to map onto")
            values = {k: np.asarray(v, dtype=float) for k, v in data.items() if k not in _NPZ_META_KEYS}
        return from_joint_values(model, values, fps, name=name, loop=loop, source=src, meta=meta)


_NPZ_META_KEYS = {"format", "name", "model", "fps", "loop", "source", "meta", "qvel", "joint_names"}


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _qpos_width(model: MuscleModel, joint: str, source: str) -> int:
    m = model.mj_model
    try:
        jid = m.joint(joint).id
    except KeyError:
        raise MotionError(f"{source}: joint {joint!r} is not in model {model.name!r}") from None
    t = int(m.jnt_type[jid])
    return {int(mujoco.mjtJoint.mjJNT_FREE): 7, int(mujoco.mjtJoint.mjJNT_BALL): 4}.get(t, 1)


def from_joint_values(
    model: MuscleModel,
    values: dict[str, np.ndarray],
    fps: float,
    *,
    name: str = "motion",
    loop: bool = False,
    source: str = "",
    meta: dict | None = None,
    base_qpos: np.ndarray | None = None,
) -> ReferenceMotion:
    """A motion from per-joint trajectories (``{joint name: [time] or [time, width]}``).

    Joints not given hold ``base_qpos`` (default: the model's standing pose); joints driven by
    equality constraints (myo-sim knees, patellae) follow their drivers. Unknown joint names,
    ragged lengths and NaNs raise :class:`MotionError` naming the joint.
    """
    where = source or name
    m = model.mj_model
    lengths = {k: np.asarray(v).shape[0] for k, v in values.items()}
    if not lengths:
        raise MotionError(f"{where}: no joint trajectories given")
    unknown = sorted(k for k in values if k not in {m.joint(j).name for j in range(m.njnt)})
    if unknown:
        raise MotionError(f"{where}: joints not in model {model.name!r}: {unknown[:8]}")
    T = max(lengths.values())
    ragged = {k: n for k, n in lengths.items() if n != T}
    if ragged:
        raise MotionError(f"{where}: joint trajectories differ in length ({T} frames vs {ragged})")
    base = model.standing_qpos if base_qpos is None else np.asarray(base_qpos, dtype=float)
    q = np.tile(base, (T, 1))
    for k, v in values.items():
        v = np.asarray(v, dtype=float).reshape(T, -1)
        w = _qpos_width(model, k, where)
        if v.shape[1] != w:
            raise MotionError(f"{where}: joint {k!r} needs {w} values per frame, got {v.shape[1]}")
        bad = np.argwhere(~np.isfinite(v))
        if bad.size:
            raise MotionError(f"{where}: NaN/inf in joint {k!r} at frame {int(bad[0][0])}")
        adr = int(m.jnt_qposadr[m.joint(k).id])
        q[:, adr : adr + w] = v
    _normalise_quats(m, q)
    apply_joint_couplings(model, q)
    joint_names = tuple(m.joint(j).name for j in range(m.njnt))
    return ReferenceMotion(name, model.name, joint_names, q, fps, loop, source, dict(meta or {}))


def apply_joint_couplings(model: MuscleModel, qpos: np.ndarray) -> np.ndarray:
    """Set joints driven by joint-equality constraints from their drivers, in place.

    MuJoCo's joint equality: ``q1 - q1_0 = c0 + c1 (q2 - q2_0) + c2 (q2 - q2_0)^2 + ...``
    (``q_0`` = qpos0), or ``q1 = q1_0 + c0`` without a second joint. ``qpos``: ``[..., nq]``.
    """
    m = model.mj_model
    for e in range(m.neq):
        if m.eq_type[e] != mujoco.mjtEq.mjEQ_JOINT or not m.eq_active0[e]:
            continue
        a1 = int(m.jnt_qposadr[m.eq_obj1id[e]])
        c = m.eq_data[e, :5]
        if m.eq_obj2id[e] >= 0:
            a2 = int(m.jnt_qposadr[m.eq_obj2id[e]])
            x = qpos[..., a2] - m.qpos0[a2]
            qpos[..., a1] = m.qpos0[a1] + c[0] + x * (c[1] + x * (c[2] + x * (c[3] + x * c[4])))
        else:
            qpos[..., a1] = m.qpos0[a1] + c[0]
    return qpos


# right -> left name rewrites, tried in order; the first pattern a name matches decides
_RIGHT_TO_LEFT = ((r"_r$", "_l"), (r"^r_", "l_"), (r"right", "left"), (r"_r_", "_l_"))


def _right_left_pairs(names: list[str], patterns=_RIGHT_TO_LEFT) -> list[tuple[int, int]]:
    """Positions ``(right, left)`` of names that pair up under ``patterns``."""
    index = {n: i for i, n in enumerate(names)}
    pairs = []
    for i, n in enumerate(names):
        for r_pat, l_pat in patterns:
            if re.search(r_pat, n):
                other = re.sub(r_pat, l_pat, n)
                if other in index:
                    pairs.append((i, index[other]))
                break
    return pairs


def _side_pairs(model: MuscleModel) -> list[tuple[int, int]]:
    """qpos indices of (right, left) joint pairs named ``*_r`` / ``*_l`` (or ``r_*`` / ``l_*``)."""
    joints = list(model.joints)
    return [
        (joints[r].qpos_index, joints[l].qpos_index) for r, l in _right_left_pairs([j.name for j in joints])
    ]


def _lateral_axis(model: MuscleModel, d: mujoco.MjData) -> np.ndarray:
    """Unit world vector from the left to the right side of the model, from ``d``'s kinematics
    at qpos0 (root unrotated): the mean over ``*_r``/``*_l`` (``r_*``/``l_*``) body pairs."""
    m = model.mj_model
    names = [m.body(b).name for b in range(m.nbody)]
    diffs = [d.xpos[r] - d.xpos[l] for r, l in _right_left_pairs(names, _RIGHT_TO_LEFT[:2])]
    if not diffs:
        raise MotionError(f"model {model.name!r} has no left/right body pairs to find its lateral axis")
    v = np.mean(diffs, axis=0)
    return v / np.linalg.norm(v)


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
    return model.free_root_qpos


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
