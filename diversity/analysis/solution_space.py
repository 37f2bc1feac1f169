"""How diverse are muscle solutions that produce the same kinematics?

- :func:`dispersion`: between-policy dispersion of a signal family, as pairwise RMS distances
  between policies divided by the RMS temporal modulation of the mean pattern (so families with
  different units compare: "how far apart are two policies, relative to how much the signal
  moves during the motion").
- :func:`dispersion_ratio`: muscle over kinematic dispersion, with a paired sign-flip
  permutation test on the per-pair log ratios (H0: policies are as far apart in muscle space as
  in kinematic space).
- :func:`cluster_policies`: hierarchical (Ward) clustering of activation patterns.
- :func:`synergies` / :func:`synergy_similarity`: NMF muscle synergies per policy, the number
  chosen as the smallest reaching variance-accounted-for >= 90 %, matched across policies.
- :func:`diversity_index`: per muscle, between-seed SD over within-cycle SD.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = [
    "cluster_policies",
    "dispersion",
    "dispersion_ratio",
    "diversity_index",
    "synergies",
    "synergy_similarity",
    "action_basis",
    "basis_toml",
]


def _pairs(n):
    i, j = np.triu_indices(n, k=1)
    return i, j


def dispersion(x: np.ndarray) -> tuple[float, np.ndarray]:
    """``x [policy, time, feature]`` -> (mean normalised pairwise distance, per-pair distances).

    Distance between policies a, b: RMS over time and features of ``x_a - x_b``; normalised by
    the RMS over time and features of the mean pattern's deviation from its temporal mean."""
    x = np.asarray(x, float)
    if x.ndim == 2:
        x = x[..., None]
    mean = x.mean(0)
    scale = np.sqrt(np.mean((mean - mean.mean(0)) ** 2))
    if scale == 0:
        raise ValueError("the mean pattern does not change over time: nothing to normalise by")
    i, j = _pairs(len(x))
    d = np.sqrt(np.mean((x[i] - x[j]) ** 2, axis=(1, 2))) / scale
    return float(d.mean()), d


def dispersion_ratio(muscle: np.ndarray, kinematics: np.ndarray, n_perm: int = 5000, seed: int = 0) -> dict:
    """Muscle-space over kinematic-space dispersion of the same policies.

    Returns ``{"ratio", "muscle", "kinematics", "p_value", "n_pairs"}``; ``p_value`` is one-sided
    (ratio > 1) from randomly swapping which family each pair's distance belongs to."""
    dm, pm = dispersion(muscle)
    dk, pk = dispersion(kinematics)
    log_ratio = np.log(np.maximum(pm, 1e-12)) - np.log(np.maximum(pk, 1e-12))
    observed = log_ratio.mean()
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n_perm, len(log_ratio)))
    null = (signs * log_ratio).mean(1)
    p = (1 + np.sum(null >= observed)) / (n_perm + 1)
    return {"ratio": dm / dk, "muscle": dm, "kinematics": dk, "p_value": float(p), "n_pairs": len(pm)}


def cluster_policies(x: np.ndarray, n_clusters: int | None = None, max_clusters: int = 6) -> dict:
    """Ward clustering of policies by pattern ``x [policy, features...]`` (z-scored features).

    ``n_clusters`` None: the count in 2..max_clusters with the best silhouette. Returns
    ``{"linkage", "labels", "n_clusters", "silhouette"}``."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.metrics import silhouette_score

    x = np.asarray(x, float).reshape(len(x), -1)
    sd = x.std(0)
    z = (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)
    link = linkage(z, method="ward")
    n = len(x)
    if n < 3:
        return {"linkage": link, "labels": np.ones(n, int), "n_clusters": 1, "silhouette": float("nan")}
    candidates = [n_clusters] if n_clusters else range(2, min(max_clusters, n - 1) + 1)
    best = None
    for k in candidates:
        labels = fcluster(link, k, criterion="maxclust")
        if len(set(labels)) < 2:
            continue
        s = silhouette_score(z, labels)
        if best is None or s > best[0]:
            best = (s, k, labels)
    if best is None:
        return {"linkage": link, "labels": np.ones(n, int), "n_clusters": 1, "silhouette": float("nan")}
    return {
        "linkage": link,
        "labels": best[2],
        "n_clusters": int(len(set(best[2]))),
        "silhouette": float(best[0]),
    }


def _nmf(a: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """One NMF of the non-negative ``a [sample, muscle]`` with ``k`` synergies: ``(w [k, muscle],
    h [sample, k], vaf)``, the variance accounted for ``1 - ||A - HW||^2 / ||A||^2``."""
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    model = NMF(n_components=k, init="nndsvda", max_iter=2000, random_state=seed, tol=1e-6)
    with warnings.catch_warnings():  # a not-quite-converged fit still reports its VAF
        warnings.simplefilter("ignore", ConvergenceWarning)
        h = model.fit_transform(a)
    w = model.components_
    total = np.sum(a**2)
    vaf = float(1 - np.sum((a - h @ w) ** 2) / total) if total > 0 else 1.0
    return w, h, vaf


def synergies(
    activation: np.ndarray, vaf_target: float = 0.9, max_synergies: int | None = None, seed: int = 0
) -> dict:
    """NMF synergies of one policy's ``activation [time, muscle]`` (non-negative).

    The smallest k with variance accounted for ``1 - ||A - HW||^2 / ||A||^2 >= vaf_target``.
    Returns ``{"k", "vaf", "weights" [k, muscle] (unit norm), "activations" [time, k]}``."""
    a = np.clip(np.asarray(activation, float), 0, None)
    max_k = max_synergies or min(a.shape)
    for k in range(1, max_k + 1):
        w, h, vaf = _nmf(a, k, seed)
        if vaf >= vaf_target:
            break
    norm = np.linalg.norm(w, axis=1, keepdims=True)
    norm = np.where(norm > 0, norm, 1.0)
    return {"k": k, "vaf": vaf, "weights": w / norm, "activations": h * norm.T}


def action_basis(activation: np.ndarray, muscles, k: int, seed: int = 0) -> dict:
    """A synergy basis for ``EnvConfig.action_basis`` from policies' ``activation [seed, time,
    muscle]`` (NaN samples, after a fall, left out): ``k`` NMF synergies of all seeds' samples
    together, each scaled so its largest weight is 1 (a synergy at 1 fully excites its main
    muscle). Returns ``{"k", "vaf", "basis": [{muscle: weight}, ...]}`` (weights below 1e-3 of
    the row's largest dropped)."""
    a = np.asarray(activation, float)
    muscles = list(muscles)
    if a.ndim != 3 or a.shape[-1] != len(muscles):
        raise ValueError(
            f"activation must be [seed, time, muscle] with {len(muscles)} muscles, got {a.shape}"
        )
    samples = a.reshape(-1, a.shape[-1])
    samples = samples[np.isfinite(samples).all(axis=1)]
    if not 1 <= k <= min(samples.shape):
        raise ValueError(f"k must be within 1..{min(samples.shape)} for {samples.shape[0]} samples, got {k}")
    w, _, vaf = _nmf(np.clip(samples, 0, None), k, seed)
    if (w.max(axis=1) <= 0).any():
        raise ValueError(
            f"the activations hold fewer than {k} synergies (an empty one came out); ask for fewer"
        )
    w = w / w.max(axis=1, keepdims=True)
    basis = [{m: round(float(x), 4) for m, x in zip(muscles, row, strict=True) if x >= 1e-3} for row in w]
    return {"k": k, "vaf": vaf, "basis": basis}


def basis_toml(result: dict, source: str) -> str:
    """``[[env.action_basis]]`` tables of :func:`action_basis`'s result, to append to a recipe."""
    lines = [
        f"# {result['k']} muscle synergies of {source} (NMF, VAF {result['vaf']:.3f}): append to a recipe,",
        "# the policy then acts on the synergies (EnvConfig.action_basis)",
    ]
    for i, synergy in enumerate(result["basis"]):
        lines += ["", f"[[env.action_basis]]  # synergy {i}"]
        lines += [f'"{m}" = {w}' for m, w in sorted(synergy.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"


def synergy_similarity(w_a: np.ndarray, w_b: np.ndarray) -> float:
    """Mean cosine similarity of best-matched synergy weight vectors (Hungarian assignment over
    the smaller set)."""
    from scipy.optimize import linear_sum_assignment

    a = w_a / np.maximum(np.linalg.norm(w_a, axis=1, keepdims=True), 1e-12)
    b = w_b / np.maximum(np.linalg.norm(w_b, axis=1, keepdims=True), 1e-12)
    sim = a @ b.T
    r, c = linear_sum_assignment(-sim)
    return float(sim[r, c].mean())


def diversity_index(cycle_means: np.ndarray, muscles: list[str]) -> pd.DataFrame:
    """Per muscle, from per-seed cycle-mean activations ``[seed, percent, muscle]``: the
    between-seed SD (averaged over the cycle) over the within-cycle SD of the seed-mean pattern.
    Sorted, most diverse first."""
    x = np.asarray(cycle_means, float)
    between = np.nanmean(np.nanstd(x, axis=0), axis=0)
    within = np.nanstd(np.nanmean(x, axis=0), axis=0)
    index = between / np.where(within > 0, within, np.nan)
    df = pd.DataFrame(
        {"muscle": muscles, "diversity_index": index, "between_seed_sd": between, "within_cycle_sd": within}
    )
    return df.sort_values("diversity_index", ascending=False, na_position="last").reset_index(drop=True)
