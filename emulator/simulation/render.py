"""Offscreen images of a model: rolled-out poses with muscles coloured, and the reference pose.

MuJoCo renders without a display through OSMesa (``MUJOCO_GL=osmesa``, Debian package
``libosmesa6``) or EGL (``MUJOCO_GL=egl``, a GPU driver). :mod:`emulator._gl` picks one when
``emulator`` is imported (before MuJoCo reads it); set ``MUJOCO_GL`` yourself to force one.

Muscles are drawn through their tendons (the myo-sim and MyoFullBody muscles are tendon
actuators); callers pass one RGBA per muscle and frame (e.g. a colour map of activation).
"""

from __future__ import annotations

import os

import numpy as np

from emulator.models import MuscleModel
from emulator.motion.reference import _free_root_adr, apply_joint_couplings

__all__ = ["RenderError", "Renderer", "qpos_from_series"]


class RenderError(RuntimeError):
    """No offscreen OpenGL is available (the message says what to install)."""


def qpos_from_series(
    model: MuscleModel,
    joint_angle: np.ndarray,
    root_position: np.ndarray | None = None,
    root_orientation: np.ndarray | None = None,
) -> np.ndarray:
    """Full ``qpos [time, nq]`` from tracked joint angles ``[time, joint]`` (the model's tracked
    joints, in order) and the free root's position/quaternion; other joints take the standing
    pose and coupled joints follow their drivers."""
    joint_angle = np.asarray(joint_angle, float)
    q = np.tile(model.standing_qpos, (len(joint_angle), 1))
    for k, j in enumerate(model.tracked_joints):
        q[:, j.qpos_index] = joint_angle[:, k]
    a = _free_root_adr(model)
    if a is not None and root_position is not None:
        q[:, a : a + 3] = root_position
        if root_orientation is not None:
            quat = np.asarray(root_orientation, float)
            q[:, a + 3 : a + 7] = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    apply_joint_couplings(model, q)
    return q


class Renderer:
    """Side-view images of ``model`` poses, ``width x height`` pixels (RGB uint8)."""

    def __init__(
        self, model: MuscleModel, width: int = 320, height: int = 320, distance: float | None = None
    ):
        import mujoco

        self.model = model
        self.m = model.mj_model
        self.d = mujoco.MjData(self.m)
        try:
            self._r = mujoco.Renderer(self.m, height, width)
        except Exception as e:  # noqa: BLE001 - every GL failure means the same thing to the user
            raise RenderError(
                f"offscreen rendering is unavailable (MUJOCO_GL={os.environ.get('MUJOCO_GL')}: "
                f"{type(e).__name__}: {e}); install OSMesa (Debian/Ubuntu: apt-get install libosmesa6) "
                "or use MUJOCO_GL=egl with a GPU driver"
            ) from None
        self._mujoco = mujoco
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        # frame the bodies that move (tracked bodies), seen from the side: the camera looks
        # along the model's left-right axis when it has paired right/left bodies
        self._tracked = np.array([self.m.body(b).id for b in model.tracked_bodies] or [1])
        self.d.qpos[:] = model.standing_qpos
        mujoco.mj_kinematics(self.m, self.d)
        pts = self.d.xpos[self._tracked]
        spread = float(np.max(np.linalg.norm(pts - pts.mean(0), axis=1))) if len(pts) > 1 else 0.3
        self.camera.distance = distance or 2.4 * spread + 0.6
        self.camera.elevation = -10.0
        self.camera.azimuth = 0.0
        for right, left in (("femur_r", "femur_l"), ("humerus_r", "humerus_l"), ("calcn_r", "calcn_l")):
            try:
                lateral = self.d.xpos[self.m.body(left).id] - self.d.xpos[self.m.body(right).id]
            except KeyError:
                continue
            self.camera.azimuth = float(np.degrees(np.arctan2(lateral[1], lateral[0])))
            break
        act = self.m.actuator_trnid[:, 0]
        is_tendon = self.m.actuator_trntype == mujoco.mjtTrn.mjTRN_TENDON
        muscles = set(model.muscles)
        names = [self.m.actuator(i).name for i in range(self.m.nu)]
        self._tendon = np.array(
            [act[i] if is_tendon[i] else -1 for i in range(self.m.nu) if names[i] in muscles]
        )
        self._base_rgba = self.m.tendon_rgba.copy()
        self._option = mujoco.MjvOption()
        self._option.flags[mujoco.mjtVisFlag.mjVIS_TENDON] = True

    def frame(self, qpos: np.ndarray, muscle_rgba: np.ndarray | None = None, lookat=None) -> np.ndarray:
        """One image of pose ``qpos [nq]``; ``muscle_rgba [muscle, 4]`` colours the muscles
        (None: the model's own colours). The camera looks at ``lookat`` (default: the centroid of the tracked bodies)."""
        mj = self._mujoco
        self.d.qpos[:] = qpos
        mj.mj_kinematics(self.m, self.d)
        mj.mj_comPos(self.m, self.d)
        mj.mj_tendon(self.m, self.d)
        mj.mj_transmission(self.m, self.d)
        self.m.tendon_rgba[:] = self._base_rgba
        if muscle_rgba is not None:
            ok = self._tendon >= 0
            self.m.tendon_rgba[self._tendon[ok]] = np.asarray(muscle_rgba, float)[ok]
        self.camera.lookat[:] = lookat if lookat is not None else self.d.xpos[self._tracked].mean(0)
        self._r.update_scene(self.d, self.camera, self._option)
        return self._r.render().copy()

    def close(self) -> None:
        self.m.tendon_rgba[:] = self._base_rgba  # the model is shared: leave its colours as found
        self._r.close()
