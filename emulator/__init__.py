"""MS-Emulator: muscle-driven motion tracking on MuJoCo musculoskeletal models.

Layers import only downward, one folder each::

    models.py     the muscle models (built-ins or any MJCF) and the facts read off them
    motion/       reference motions: the type, file readers, retargeting, sources by name or file
    simulation/   physics backends (cpu | mjx), the tracking environment, Gymnasium, rendering
    learning/     rewards, agents (PPO, Qflex), the many-seed trainer, rollouts, kept policies

``paths`` (where the shipped data live), ``schema`` (names, dims and units of every quantity)
and ``runtime`` (what a result depends on) serve every layer.
"""

# MuJoCo picks its offscreen GL when first imported: choose it before anything imports mujoco
from emulator import _compat, _gl  # noqa: F401
from emulator.models import BUILTIN_MODELS, ModelError, MuscleModel, describe, load_model
from emulator.motion.reference import MotionError, ReferenceMotion, elbow_flexion_cycle, standing_motion
from emulator.motion.retarget import retarget_points
from emulator.motion.sources import describe_motion, list_demos, load_demo, load_motion, resolve_motion
from emulator.simulation.env import EnvConfig, EnvState, TrackingEnv
from emulator.simulation.physics import BACKENDS, default_backend, make_physics
from emulator.simulation.signals import Signals

__version__ = "0.1.0"
_compat.install()  # the module names of earlier releases (emulator.env, emulator.train, ...)


def _register_gymnasium() -> None:
    """``gymnasium.make("emulator/MuscleTracking-v0", model=..., motion=..., **env_options)``."""
    import gymnasium

    if "emulator/MuscleTracking-v0" not in gymnasium.registry:
        gymnasium.register(
            id="emulator/MuscleTracking-v0", entry_point="emulator.simulation.gym:MuscleTrackingEnv"
        )


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
