"""Retargeting: measured points or named coordinates onto a model's joints.

Two routes lead to a :class:`~emulator.motion.reference.ReferenceMotion`:

* **Coordinates** (OpenSim ``.mot``/``.sto``) whose columns already name model joints map
  directly (:func:`coordinates_to_motion`): ``pelvis_*`` onto the free root, sign conventions
  converted where the model differs (gait2392 writes knee flexion negative; myo-sim's
  ``knee_angle_*`` is positive in flexion).
* **Points** (markers, joint centres: TRC, C3D, BVH, AMASS) go through inverse kinematics
  (:func:`retarget_points`): a *point map* (:class:`PointMap`, TOML) says which input points are
  which model *landmarks* (joint centres such as ``hip_r``, ``knee_r``) and which are skin
  markers riding on which *segment* (``thigh_r``). The input is scaled to the model's size, the
  root aligned, and every frame solved by damped least squares on MuJoCo point Jacobians,
  warm-started from the previous frame, joints clamped into their ranges. With skin markers the
  solve runs twice: landmarks only, then every marker with its offset in its segment calibrated
  from the first pass (as a static-trial calibration would).

Landmarks and segments of a model are found from OpenSim body names (``pelvis``, ``femur_r``,
``tibia_r``, ``talus_r``, ``calcn_r``, ``toes_r``, ``torso``, ``humerus_r``, ``ulna_r``,
``radius_r``, ``lunate_r``/``hand_r``, ``head``) or sites named like the landmark; the elbow
model has its own table. A user map can name bodies directly (``body:NAME``).
The package's modules follow its concerns: :mod:`.landmarks` (the model side: landmarks and
segments), :mod:`.point_maps` (the input side), :mod:`.ik` (scaling, root alignment, damped
least squares), :mod:`.ground` (feet on the floor), :mod:`.contact` (a walking cycle's feet on the
floor at its gait events, by contact-constrained IK) and :mod:`.coordinates` (named coordinates).
Files of any format come in through :func:`emulator.motion.sources.load_motion`.
"""

from emulator.motion.retarget.contact import ContactEvents, ContactFit, ground_on_contacts, kinematic_events
from emulator.motion.retarget.coordinates import coordinates_to_motion
from emulator.motion.retarget.errors import RetargetError
from emulator.motion.retarget.ground import GROUND_MODES, stance_translation_scale
from emulator.motion.retarget.ik import RetargetReport, points_from_motion, retarget_points
from emulator.motion.retarget.landmarks import model_landmarks, model_segments
from emulator.motion.retarget.point_maps import PointMap, guess_map, known_maps, load_map

__all__ = [
    "GROUND_MODES",
    "ContactEvents",
    "ContactFit",
    "PointMap",
    "RetargetError",
    "RetargetReport",
    "coordinates_to_motion",
    "ground_on_contacts",
    "guess_map",
    "kinematic_events",
    "known_maps",
    "load_map",
    "model_landmarks",
    "model_segments",
    "points_from_motion",
    "retarget_points",
    "stance_translation_scale",
]
