"""One table for what the emulator's results and the store are called: every rollout variable
with its dimensions, units and long name, the four tracking metrics, the learning curves and
the coordinates. The rollout (:mod:`emulator.learning.rollout`), the trainer, the environment,
the store and its validator (:mod:`diversity.store`), the analyses and the figures all read
their names and units from here.

Units follow CF conventions (``1`` for dimensionless); ``None`` marks label coordinates.
"""

from __future__ import annotations

__all__ = [
    "COORDS",
    "CURVES",
    "CURVE_NAMES",
    "FOOT_ORDER",
    "METRICS",
    "METRIC_NAMES",
    "METRIC_UNITS",
    "ROLLOUT_DIMS",
    "ROLLOUT_UNITS",
    "VARIABLES",
]

FOOT_ORDER = ("left", "right")

# the four tracking metrics: name -> (units, long name)
METRICS = {
    "joint_angle_error": ("deg", "mean absolute joint-angle error over tracked hinge joints"),
    "root_rotation_error": ("deg", "root orientation error"),
    "body_position_error": ("cm", "mean body position error relative to the root"),
    "root_translation_error": ("cm", "root position error"),
}
METRIC_NAMES = tuple(METRICS)
METRIC_UNITS = {name: units for name, (units, _) in METRICS.items()}

# rollout series: name -> (dims, units, long name). A model without a free root lacks root_*,
# one without feet lacks grf/cop. ``metrics`` is one [seed, time, metric] array in a rollout
# and four named variables (METRICS) in the store.
VARIABLES = {
    "excitation": (("seed", "time", "muscle"), "1", "muscle excitation (control), 0-1"),
    "activation": (("seed", "time", "muscle"), "1", "muscle activation, 0-1"),
    "muscle_force": (("seed", "time", "muscle"), "N", "muscle tension (positive when pulling)"),
    "muscle_length": (("seed", "time", "muscle"), "m", "muscle-tendon actuator length"),
    "muscle_velocity": (("seed", "time", "muscle"), "m/s", "muscle-tendon actuator lengthening velocity"),
    "joint_angle": (("seed", "time", "joint"), "rad", "joint angle (m for slide joints, see joint_units)"),
    "joint_velocity": (
        ("seed", "time", "joint"),
        "rad/s",
        "joint angular velocity (m/s for slide joints, see joint_units)",
    ),
    "reference_joint_angle": (("time", "joint"), "rad", "reference joint angle"),
    "root_position": (("seed", "time", "axis"), "m", "root position, world frame"),
    "root_orientation": (
        ("seed", "time", "quaternion"),
        "1",
        "root orientation quaternion w-x-y-z, world frame",
    ),
    "reference_root_position": (("time", "axis"), "m", "reference root position, world frame"),
    "grf": (("seed", "time", "foot", "axis"), "N", "ground reaction force on each foot, world frame"),
    "cop": (
        ("seed", "time", "foot", "axis"),
        "m",
        "centre of pressure of each foot's floor contacts, world frame (NaN: no contact)",
    ),
    "tracking_error": (
        ("seed", "time", "component"),
        "mixed",
        "tracking-error vector Δ (units per component: component_units)",
    ),
    "metrics": (("seed", "time", "metric"), "mixed", "tracking metrics (deg, deg, cm, cm)"),
    "terminated": (("seed", "time"), "1", "the environment's termination test fired at this step"),
}
ROLLOUT_DIMS = {name: dims for name, (dims, _, _) in VARIABLES.items()}
ROLLOUT_UNITS = {name: (units, long) for name, (_, units, long) in VARIABLES.items()}

# learning curves per seed and iteration: name -> (units, long name); stored as train_<name>
CURVES = {
    "env_steps": ("1", "control steps per seed so far"),
    "wall_time_s": ("s", "training wall time of the seed's block"),
    "reward": ("1", "mean reward per control step"),
    "episode_return": ("1", "mean return of episodes that ended in the iteration"),
    "joint_angle_error_deg": ("deg", "training mean joint-angle error"),
    "root_rotation_error_deg": ("deg", "training root rotation error"),
    "body_position_error_cm": ("cm", "training body position error"),
    "root_translation_error_cm": ("cm", "training root translation error"),
    "termination_rate": ("1", "fraction of ended episodes that terminated early"),
    "episode_length_s": ("s", "mean length of the episodes that ended in the iteration"),
}
CURVE_NAMES = tuple(CURVES)

# coordinates: name -> (units, long name)
COORDS = {
    "seed": ("1", "policy seed (jax.random.PRNGKey)"),
    "time": ("s", "time since the rollout's start (end of each control step)"),
    "iteration": ("1", "training iteration"),
    "muscle": (None, "muscle (actuator) name"),
    "joint": (None, "tracked joint name"),
    "foot": (None, "foot"),
    "axis": (None, "world axis (x forward, y left, z up)"),
    "quaternion": (None, "quaternion component"),
    "component": (None, "tracking-error component"),
    "joint_units": (None, "units of each joint's angle"),
    "component_units": (None, "units of each tracking-error component"),
}
