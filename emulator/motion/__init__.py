"""Motions: the reference-motion type, file readers (:mod:`.formats`), retargeting onto a model
(:mod:`.retarget`) and the one way in for a motion by name or file (:mod:`.sources`)."""

from emulator.motion.reference import (
    MotionError,
    ReferenceMotion,
    apply_joint_couplings,
    elbow_flexion_cycle,
    from_joint_values,
    standing_motion,
)

__all__ = [
    "MotionError",
    "ReferenceMotion",
    "apply_joint_couplings",
    "elbow_flexion_cycle",
    "from_joint_values",
    "standing_motion",
]
