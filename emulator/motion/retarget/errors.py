"""The retargeting error."""

from __future__ import annotations

from emulator.motion.reference import (
    MotionError,
)


class RetargetError(MotionError):
    """Retargeting cannot proceed (unknown map entry, too few points, model lacks a landmark)."""
