"""Publication figures from a store: every function takes ``ax=None`` (or ``axes``), draws one
panel family, labels axes with units and returns the axes.

Style: single-column width (3.5 in) by default, 8 pt text, the Okabe-Ito colour-blind-safe
palette, vector output (PDF/SVG) with text kept as text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

__all__ = [
    "PALETTE",
    "diversity_index_bar",
    "emg_panels",
    "grf_panels",
    "joint_angle_bands",
    "pca_explained",
    "policy_dendrogram",
    "style",
    "tracking_boxplot",
    "write_figures",
]

# Okabe & Ito (2008): distinguishable with the common colour-vision deficiencies
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
SINGLE_COLUMN_IN = 3.5


def style() -> dict:
    """Matplotlib rc settings used for every figure."""
    from cycler import cycler

    return {
        "font.size": 8,
        "axes.titlesize": 8,
        "axes.labelsize": 8,
        "xtick.labelsize": 7,
        "ytick.labelsize": 7,
        "legend.fontsize": 7,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": cycler(color=PALETTE),
        "pdf.fonttype": 42,  # TrueType: editable text in vector files
        "svg.fonttype": "none",
        "savefig.bbox": "tight",
        "figure.dpi": 150,
    }


def _ax(ax, size=(SINGLE_COLUMN_IN, 2.4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _axes(axes, n, ncols=2, height=1.5):
    import matplotlib.pyplot as plt

    if axes is not None:
        return np.atleast_1d(axes).ravel()[:n]
    nrows = int(np.ceil(n / ncols))
    _, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(SINGLE_COLUMN_IN * ncols / 2 * 1.4, height * nrows),
        squeeze=False,
        layout="constrained",
    )
    for extra in grid.ravel()[n:]:
        extra.set_visible(False)
    return grid.ravel()[:n]


def tracking_boxplot(table, ax=None, metrics=("joint_angle_error", "body_position_error")):
    """Fig. 3h: per-seed tracking metrics as box plots with the seeds overlaid."""
    from emulator.schema import METRICS

    ax = _ax(ax)
    metrics = [m for m in metrics if m in table]
    data = [table[m].to_numpy(float) for m in metrics]
    ax.boxplot(data, widths=0.5, showfliers=False)
    rng = np.random.default_rng(0)
    for i, v in enumerate(data, start=1):
        ax.plot(i + rng.uniform(-0.12, 0.12, len(v)), v, "o", ms=2.5, color=PALETTE[0], alpha=0.7)
    ax.set_xticks(range(1, len(metrics) + 1))
    ax.set_xticklabels([f"{m.replace('_', ' ')}\n({METRICS[m][0]})" for m in metrics])
    ax.set_ylabel("mean error over the rollout")
    return ax


def joint_angle_bands(bands: xr.Dataset, axes=None):
    """Fig. 3i: per joint, simulated mean +/- SD over seeds (band) vs the reference (dashed)."""
    joints = list(bands["joint"].values)
    axes = _axes(axes, len(joints))
    t = bands["time"].values
    for ax, j in zip(axes, joints, strict=True):
        m, s = bands["mean"].sel(joint=j).values, bands["sd"].sel(joint=j).values
        ax.fill_between(t, m - s, m + s, color=PALETTE[0], alpha=0.3, lw=0)
        ax.plot(t, m, color=PALETTE[0], lw=1, label="simulated (mean +/- SD)")
        ax.plot(t, bands["reference"].sel(joint=j).values, "--", color=PALETTE[7], lw=0.8, label="reference")
        ax.set_title(str(j))
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"angle ({bands['joint_units'].sel(joint=j).item()})")
    axes[0].legend(frameon=False)
    return axes


def _cycle_panels(sim, measured, r_table, key, ylabel, axes, measured_label):
    names = [c for c in sim[key].values if c in measured[key].values]
    axes = _axes(axes, len(names))
    pct = sim["percent"].values
    for ax, c in zip(axes, names, strict=True):
        s = sim.sel({key: c}).values
        mean, sd = np.nanmean(s, 0), np.nanstd(s, 0)
        ax.fill_between(pct, mean - sd, mean + sd, color=PALETTE[0], alpha=0.3, lw=0)
        ax.plot(pct, mean, color=PALETTE[0], lw=1, label="simulated")
        meas = measured.sel({key: c}).values
        if key == "channel":  # EMG in arbitrary units: scale to the simulated peak for display
            meas = meas / np.nanmax(np.abs(meas)) * np.nanmax(np.abs(mean))
        ax.plot(pct, meas, color=PALETTE[1], lw=1, label=measured_label)
        row = r_table[r_table[key] == c] if r_table is not None else []
        if len(row):
            ax.text(0.02, 0.95, f"r = {row['r'].iloc[0]:.2f}", transform=ax.transAxes, va="top")
        ax.set_title(str(c))
        ax.set_xlabel("gait cycle (%)")
        ax.set_ylabel(ylabel)
    if len(axes):
        axes[0].legend(frameon=False, loc="upper right")
    return axes


def emg_panels(simulated, measured, r_table=None, axes=None):
    """Fig. 5a: simulated activity mean +/- SD over seeds vs measured EMG (peak-scaled), r printed."""
    return _cycle_panels(simulated, measured, r_table, "channel", "activation", axes, "measured EMG (scaled)")


def grf_panels(simulated, measured, r_table=None, axes=None):
    """Fig. 5c: GRF components in body weights, simulated mean +/- SD vs measured."""
    return _cycle_panels(simulated, measured, r_table, "direction", "GRF (BW)", axes, "measured")


def pca_explained(results: dict, ax=None):
    """Fig. 5d: per-component (bars, first family) and cumulative (lines) explained variance."""
    ax = _ax(ax)
    for i, (family, res) in enumerate(results.items()):
        ratio = np.asarray(res["explained_variance_ratio"]) * 100
        k = np.arange(1, len(ratio) + 1)
        if i == 0:
            ax.bar(k, ratio, color=PALETTE[0], alpha=0.35, label=f"{family} (per component)")
        ax.plot(
            k,
            np.asarray(res["cumulative"]) * 100,
            "o-",
            ms=2.5,
            color=PALETTE[i],
            label=f"{family} (cumulative)",
        )
    ax.axhline(90, color="0.6", lw=0.6, ls=":")
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance (%)")
    ax.set_ylim(0, 102)
    ax.legend(frameon=False)
    return ax


def policy_dendrogram(linkage, seeds, ax=None):
    """Hierarchical clustering of policies by activation pattern."""
    from scipy.cluster.hierarchy import dendrogram

    ax = _ax(ax)
    dendrogram(
        linkage, labels=[str(s) for s in seeds], ax=ax, color_threshold=None, above_threshold_color=PALETTE[0]
    )
    ax.set_xlabel("policy (seed)")
    ax.set_ylabel("Ward distance (z-scored activation)")
    return ax


def diversity_index_bar(table, ax=None, top: int = 15):
    """Muscles that differ most across equally good policies (between-seed / within-cycle SD)."""
    ax = _ax(ax)
    t = table.head(top)[::-1]
    ax.barh(t["muscle"], t["diversity_index"], color=PALETTE[2])
    ax.set_xlabel("diversity index (between-seed SD / within-cycle SD)")
    return ax


def activation_per_seed(
    cycles: xr.DataArray, muscles: list[str] | None = None, axes=None, cycle_label: str = "gait cycle (%)"
):
    """Each muscle's activation over the cycle with every seed overlaid (one thin line per
    seed, the mean in black): the picture of diversity, same kinematics, different muscles.

    ``cycles``: ``[seed, percent, muscle]`` per-seed mean cycles (what ``analyze`` compared).
    ``muscles`` default: the 12 whose seed-to-seed spread (mean SD over the cycle) is largest.
    ``cycle_label``: the x label (``"motion cycle (%)"`` when the cycles are not gait cycles)."""
    act = cycles.transpose("seed", "percent", "muscle")
    if muscles is None:
        spread = act.std("seed").mean("percent").values
        order = np.argsort(-np.nan_to_num(spread))
        muscles = [str(act["muscle"].values[i]) for i in order[:12]]
    axes = _axes(axes, len(muscles), ncols=4, height=1.2)
    pct = act["percent"].values
    for ax, m in zip(axes, muscles, strict=True):
        y = act.sel(muscle=m).values  # [seed, percent]
        for k, row in enumerate(y):
            ax.plot(pct, row, lw=0.6, alpha=0.7, color=PALETTE[k % len(PALETTE)])
        ax.plot(pct, np.nanmean(y, axis=0), lw=1.4, color="black")
        ax.set_title(m, fontsize=7)
        ax.set_ylim(0, max(0.05, float(np.nanmax(y)) * 1.1))
    for ax in axes[-4:]:
        ax.set_xlabel(cycle_label)
    axes[0].set_ylabel("activation")
    return axes


def write_figures(ds: xr.Dataset, out_dir: str | Path, fmt: str = "pdf", analysis=None) -> list[Path]:
    """Every figure for a store into ``out_dir`` as ``fmt`` (pdf | svg | png); ``analysis``: the
    store's :class:`~diversity.analysis.report.Analysis` (computed when not given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .analysis import tracking
    from .analysis.report import analyze

    if fmt not in ("pdf", "svg", "png"):
        raise ValueError(f"format must be pdf, svg or png, got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    analysis = analysis or analyze(ds, n_boot=200)
    ds = tracking.completed(ds)
    written = []
    with plt.rc_context(style()):

        def save(fig, name):
            path = out / f"{name}.{fmt}"
            fig.savefig(path)
            plt.close(fig)
            written.append(path)

        ax = tracking_boxplot(analysis["tables"]["tracking"])
        save(ax.figure, "tracking_boxplot")
        axes = joint_angle_bands(tracking.joint_angle_bands(ds, list(ds["joint"].values)[:6]))
        save(axes[0].figure, "joint_angles")
        if analysis["pca"]:
            save(pca_explained(analysis["pca"]).figure, "pca_explained_variance")
        # the arrays the analysis compared: the same cycles, map and measured data as its r values
        arrays, tables = analysis["arrays"], analysis["tables"]
        if "emg_simulated" in arrays:
            axes = emg_panels(arrays["emg_simulated"], arrays["emg_measured"], tables["emg_correlation"])
            save(axes[0].figure, "emg_vs_measured")
        if "grf_simulated" in arrays:
            axes = grf_panels(arrays["grf_simulated"], arrays["grf_measured"], tables["grf_comparison"])
            save(axes[0].figure, "grf_vs_measured")
        label = "gait cycle (%)" if analysis.gait_cycles else "motion cycle (%)"
        axes = activation_per_seed(arrays["activation_cycles"], cycle_label=label)
        save(axes[0].figure, "activation_per_seed")
        if "cluster_linkage" in arrays:
            # the seeds the cycle analyses took (those with a whole cycle before a fall)
            seeds = arrays["activation_cycles"]["seed"].values
            save(policy_dendrogram(arrays["cluster_linkage"], seeds).figure, "policy_clusters")
            save(diversity_index_bar(tables["diversity_index"]).figure, "diversity_index")
    return written
