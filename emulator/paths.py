"""Where the shipped data live: one place for every path into ``datasets/``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["datasets_dir", "deepmimic_dir", "falisse_dir", "measured_dir_root", "motions_dir", "policies_dir"]


def datasets_dir() -> Path:
    """The shipped ``datasets/`` directory: ``$MS_DIVERSITY_DATASETS``, the installed package data
    (``emulator/_datasets``), or the source checkout's ``datasets/``."""
    env = os.environ.get("MS_DIVERSITY_DATASETS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for cand in (here / "_datasets", here.parent / "datasets"):
        if (cand / "motions").is_dir():
            return cand
    raise FileNotFoundError(
        "shipped datasets not found (looked in emulator/_datasets and the source checkout's datasets/); "
        "set MS_DIVERSITY_DATASETS to the datasets directory"
    )


def motions_dir() -> Path:
    """Shipped motions: ``motions/<model>/<name>.npz``."""
    return datasets_dir() / "motions"


def falisse_dir() -> Path:
    """The Falisse et al. 2019 walking/running data (trial files, IK averages, EMG/GRF)."""
    return datasets_dir() / "walking-falisse2019"


def deepmimic_dir() -> Path:
    """DeepMimic's clips and its humanoid skeleton (``humanoid.urdf``)."""
    return datasets_dir() / "deepmimic"


def measured_dir_root() -> Path:
    """Measured gait-cycle data sets for the analyses: ``measured/<name>/``."""
    return datasets_dir() / "measured"


def policies_dir() -> Path:
    """Shipped trained policy sets: ``policies/<name>/``."""
    return datasets_dir() / "policies"
