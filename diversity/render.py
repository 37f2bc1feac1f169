"""Filmstrips and videos of a stored rollout: the muscle model with muscles coloured by
activation (viridis, with a colour bar) beside the reference pose (grey).

``diversity render STORE --seed S --out DIR`` writes ``filmstrip_seed<S>.png`` (and ``.pdf``)
with ``--frames`` evenly spaced frames, and ``rollout_seed<S>.mp4`` of the whole rollout.
The drawing is the emulator's (:mod:`emulator.simulation.render`); this module only arranges images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["render_store"]

REFERENCE_RGBA = np.array([0.6, 0.6, 0.6, 1.0])


def _pose_series(ds: xr.Dataset, seed: int, model):
    from emulator.simulation.render import qpos_from_series

    one = ds.sel(seed=seed)
    joints = [j.name for j in model.tracked_joints]
    ja = one["joint_angle"].sel(joint=joints).values
    root = one["root_position"].values if "root_position" in one else None
    quat = one["root_orientation"].values if "root_orientation" in one else None
    return qpos_from_series(model, ja, root, quat), one["activation"].sel(muscle=list(model.muscles)).values


def render_store(
    store: str | Path,
    seed: int,
    out_dir: str | Path,
    n_frames: int = 6,
    width: int = 320,
    height: int = 320,
    video: bool = True,
    fps: float | None = None,
) -> dict[str, Path]:
    """Render seed ``seed`` of a store: filmstrip PNG + PDF and (``video``) an MP4."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from emulator.learning.rollout import reference_qpos
    from emulator.learning.train import TrainConfig
    from emulator.models import load_model
    from emulator.motion.sources import load_motion
    from emulator.simulation.render import Renderer

    from .figures import style
    from .store import completed_seeds, open_checked

    ds = open_checked(store)
    if seed not in set(int(s) for s in ds["seed"].values):
        raise ValueError(f"{store}: no seed {seed} (seeds {ds['seed'].values.tolist()})")
    if seed not in completed_seeds(ds):
        raise ValueError(f"{store}: seed {seed} is not completed yet")
    config = json.loads(ds.attrs["config"])  # the model and motion as the run was given them
    model = load_model(config["model"])
    if model.content_hash != ds.attrs.get("model_hash"):
        raise ValueError(
            f"{store}: model {model.name!r} has changed since the store was written (content hash)"
        )
    motion, _ = load_motion(config["motion"], model)
    train = TrainConfig.from_dict(config["train_resolved"])  # its env config sets the control rate
    q_sim, act = _pose_series(ds, seed, model)
    T = len(q_sim)
    q_ref = reference_qpos(model, motion, T, env_config=train.env)
    cmap = plt.get_cmap("viridis")
    rgba = cmap(np.clip(act, 0, 1))  # [T, muscle, 4]
    renderer = Renderer(model, width, height)
    ref_rgba = np.tile(REFERENCE_RGBA, (model.n_muscles, 1))

    def pair(t):
        sim = renderer.frame(q_sim[t], rgba[t])
        ref = renderer.frame(q_ref[t], ref_rgba, lookat=None)
        return sim, ref

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    idx = np.linspace(0, T - 1, n_frames).round().astype(int)
    time = ds["time"].values
    written = {}
    with plt.rc_context(style()):
        fig, axes = plt.subplots(
            2, n_frames, figsize=(1.2 * n_frames, 2.6), layout="constrained", squeeze=False
        )
        for c, t in enumerate(idx):
            sim, ref = pair(t)
            for r, img in enumerate((sim, ref)):
                ax = axes[r, c]
                ax.imshow(img)
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
            axes[0, c].set_title(f"{time[t]:.2f} s")
        axes[0, 0].set_ylabel(f"seed {seed}")
        axes[1, 0].set_ylabel("reference")
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 1))
        fig.colorbar(sm, ax=axes[0, :].tolist(), shrink=0.8, label="activation")
        for ext in ("png", "pdf"):
            path = out / f"filmstrip_seed{seed}.{ext}"
            fig.savefig(path, dpi=200)
            written[ext] = path
        plt.close(fig)
    if video:
        import imageio.v2 as imageio

        rate = fps or 1.0 / float(ds.attrs.get("control_dt_s", 0.01))
        step = max(1, int(round(rate / 30)))  # at most ~30 frames per second of motion
        path = out / f"rollout_seed{seed}.mp4"
        with imageio.get_writer(path, fps=rate / step, codec="libx264", macro_block_size=16) as w:
            for t in range(0, T, step):
                sim, ref = pair(t)
                w.append_data(np.concatenate([sim, ref], axis=1))
        written["mp4"] = path
    renderer.close()
    return written
