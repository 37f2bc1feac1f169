"""Offscreen OpenGL for MuJoCo, chosen before ``mujoco`` is imported (it reads ``MUJOCO_GL`` at
import): OSMesa when libOSMesa is installed (no display or GPU needed), EGL when there is no
display; a ``MUJOCO_GL`` the user set always wins. Only rendering (:mod:`emulator.simulation.render`)
uses it."""

import ctypes.util
import os

if not os.environ.get("MUJOCO_GL"):
    if ctypes.util.find_library("OSMesa"):
        os.environ["MUJOCO_GL"] = "osmesa"
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    elif not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
