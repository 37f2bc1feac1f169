"""MS-Emulator: muscle-driven motion tracking on MuJoCo musculoskeletal models.

Layers import only downward: models -> motion -> physics -> env.
"""

from .env import EnvConfig, EnvState, TrackingEnv
from .models import BUILTIN_MODELS, ModelError, MuscleModel, describe, load_model
from .motion import MotionError, ReferenceMotion, elbow_flexion_cycle, standing_motion
from .physics import BACKENDS, default_backend, make_physics
from .types import Signals

__version__ = "0.1.0"

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
    "elbow_flexion_cycle",
    "load_model",
    "make_physics",
    "standing_motion",
]
