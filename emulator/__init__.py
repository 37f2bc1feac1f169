"""MS-Emulator: muscle-driven motion tracking on MuJoCo musculoskeletal models.

Layers import only downward: models -> motion (+ formats, retarget, demos) -> physics -> env.
"""

# MuJoCo picks its offscreen GL when first imported: choose it before anything imports mujoco
from . import _gl  # noqa: F401
from .demos import list_demos, load_demo, resolve_motion
from .env import EnvConfig, EnvState, TrackingEnv
from .models import BUILTIN_MODELS, ModelError, MuscleModel, describe, load_model
from .motion import MotionError, ReferenceMotion, elbow_flexion_cycle, standing_motion
from .physics import BACKENDS, default_backend, make_physics
from .retarget import describe_motion, load_motion, retarget_points
from .types import Signals

__version__ = "0.1.0"


def _register_gymnasium() -> None:
    """``gymnasium.make("emulator/MuscleTracking-v0", model=..., motion=..., **env_options)``."""
    import gymnasium

    if "emulator/MuscleTracking-v0" not in gymnasium.registry:
        gymnasium.register(id="emulator/MuscleTracking-v0", entry_point="emulator.gym:MuscleTrackingEnv")


_register_gymnasium()

__all__ = [
    "BACKENDS",
    "BUILTIN_MODELS",
    "EnvConfig",
    "EnvState",
    "ModelError",
    "MotionError",
    "MuscleModel",
    "ReferenceMotion",
    "Signals",
    "TrackingEnv",
    "default_backend",
    "describe",
    "describe_motion",
    "elbow_flexion_cycle",
    "list_demos",
    "load_demo",
    "load_model",
    "load_motion",
    "make_physics",
    "resolve_motion",
    "retarget_points",
    "standing_motion",
]
