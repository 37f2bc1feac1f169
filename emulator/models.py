"""Model registry: built-in musculoskeletal models and any MJCF file with muscle actuators.

A :class:`MuscleModel` is the compiled MuJoCo model plus everything the rest of the toolkit
needs to know about it *by name*: muscles, joints (with ranges), the joints whose angles are
tracked, the bodies whose positions are tracked, the feet (left/right, for ground reaction
forces), the root kind, mass and body weight, and a content hash for provenance.

Built-ins:

``elbow``
    myo-sim ``myoelbow_2dof6muscles`` (2 joints, 6 muscles, fixed base).
``myolegs``
    myo-sim composed legs (80 muscles, free root, feet on a floor), with its ``standing``
    posture as keyframe.
``myofullbody``
    musclemimic-models MyoFullBody (416 muscles, free root). Loaded through ``MjSpec`` and
    textures whose files do not resolve (the scene's skybox) are dropped before compiling.

Anything else is treated as a path to an MJCF (``.xml``) file.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

__all__ = [
    "BUILTIN_MODELS",
    "Joint",
    "ModelError",
    "MuscleModel",
    "describe",
    "load_model",
]

GRAVITY_DEFAULT = 9.81


class ModelError(ValueError):
    """A model could not be loaded or lacks what was asked of it. The message names the file."""


@dataclass(frozen=True)
class Joint:
    """One hinge or slide joint of the model.

    ``range`` is in the joint's own units (rad for hinges, m for slides); ``limited`` says
    whether MuJoCo enforces it.
    """

    name: str
    kind: str  # "hinge" | "slide"
    qpos_index: int
    dof_index: int
    range: tuple[float, float]
    limited: bool

    @property
    def angular(self) -> bool:
        return self.kind == "hinge"


SpecEdit = Callable[[mujoco.MjSpec], None]


@dataclass(frozen=True)
class _Builtin:
    description: str
    spec: Callable[[], mujoco.MjSpec]
    source: str


def _elbow_spec() -> mujoco.MjSpec:
    import myo_sim

    return mujoco.MjSpec.from_file(str(myo_sim.get_xml_path("myoelbow_2dof")))


def _myo_sim_spec(name: str) -> mujoco.MjSpec:
    """A myo-sim registry model's spec, with its named postures as keyframes when it has any."""
    import myo_sim

    with warnings.catch_warnings():
        # myo-sim attaches fragments with an empty prefix; harmless for simulation.
        warnings.simplefilter("ignore", UserWarning)
        postures = {"postures": True} if myo_sim.list_postures(name) else None
        return myo_sim.load_spec(name, build_kwargs=postures)


def _myolegs_spec() -> mujoco.MjSpec:
    """myo-sim myolegs with its 1.05 m-radius platform (a cylinder 0.4 m above a floor plane)
    replaced by the floor plane at the platform's height: a walking cycle covers 1.4 m, so
    the model would otherwise step off the platform within one cycle."""
    spec = _myo_sim_spec("myolegs")
    platforms = [
        g for g in spec.worldbody.geoms if g.type == mujoco.mjtGeom.mjGEOM_CYLINDER and g.size[0] > 0.5
    ]
    floors = [g for g in spec.worldbody.geoms if g.type == mujoco.mjtGeom.mjGEOM_PLANE]
    if len(platforms) == 1 and len(floors) == 1:
        top = platforms[0].pos[2] + platforms[0].size[1]
        floors[0].pos = [floors[0].pos[0], floors[0].pos[1], top]
        spec.delete(platforms[0])
    _drop_inter_leg_pairs(spec)
    return spec


_LEG_BODY = re.compile(r"femur|tibia|patella|talus|calcn|toes", re.IGNORECASE)


def _drop_inter_leg_pairs(spec: mujoco.MjSpec) -> list[str]:
    """Delete explicit contact pairs between a right-leg and a left-leg geom.

    myo-sim's legs collide with each other only through such ``<pair>`` elements (thigh, shank
    and foot capsules). Measured gait has a narrower base than the model's capsules: the shipped
    measured walk puts the legs 1-4.7 cm into each other in 25 of its 104 frames (mid-swing and
    around toe-off), so exact tracking was impossible there and the contact kicked the swing foot
    with ~1 kN. Floor contacts, and the arms' contacts (myofullbody), are untouched. Returns the
    names of the deleted pairs.
    """
    dropped = []
    for pair in list(spec.pairs):
        bodies = [spec.geom(name).parent.name for name in (pair.geomname1, pair.geomname2)]
        legs = all(_LEG_BODY.search(b) for b in bodies)
        if legs and {_side_of(b) for b in bodies} == {"left", "right"}:
            dropped.append(f"{pair.geomname1}/{pair.geomname2}")
            spec.delete(pair)
    return dropped


def _myofullbody_spec() -> mujoco.MjSpec:
    import musclemimic_models

    spec = mujoco.MjSpec.from_file(str(musclemimic_models.get_xml_path("myofullbody")))
    _drop_inter_leg_pairs(spec)
    return spec


BUILTIN_MODELS: dict[str, _Builtin] = {
    "elbow": _Builtin("myo-sim myoelbow 2-DoF, 6 muscles, fixed shoulder base", _elbow_spec, "myo-sim"),
    "myolegs": _Builtin(
        "myo-sim composed legs, 80 muscles, free root, feet on a floor",
        _myolegs_spec,
        "myo-sim",
    ),
    "myofullbody": _Builtin(
        "musclemimic-models MyoFullBody, 416 muscles, free root",
        _myofullbody_spec,
        "musclemimic-models",
    ),
}


def _drop_missing_textures(spec: mujoco.MjSpec, origin: Path | None) -> list[str]:
    """Delete textures whose image file does not exist (and the materials using them).

    MyoFullBody's scene names a skybox PNG that the installed package does not always carry;
    compiling would fail on it although simulation never needs it.
    """
    dropped = []
    for tex in list(spec.textures):
        if not tex.file:
            continue
        p = Path(tex.file)
        if not p.is_absolute():
            base = Path(spec.modelfiledir or (origin.parent if origin else "."))
            texdir = spec.compiler.texturedir or ""
            p = base / texdir / p
        if not p.exists():
            dropped.append(tex.name or str(tex.file))
            for mat in list(spec.materials):
                if tex.name and tex.name in list(mat.textures):
                    mat.textures = ["" if t == tex.name else t for t in mat.textures]
            spec.delete(tex)
    return dropped


def _side_of(name: str) -> str | None:
    n = name.lower()
    if re.search(r"(^|[_\-. ])(r|right)([_\-. ]|$)", n) or n.endswith("_r") or "right" in n:
        return "right"
    if re.search(r"(^|[_\-. ])(l|left)([_\-. ]|$)", n) or n.endswith("_l") or "left" in n:
        return "left"
    return None


_FOOT_PATTERN = re.compile(r"calc|calcn|toe|foot|heel|talus|mtp", re.IGNORECASE)


@dataclass(frozen=True)
class MuscleModel:
    """A compiled musculoskeletal model with named parts.

    Attributes:
        name: registry name, or the file stem for a model given by path.
        source: registry name or absolute file path it was loaded from.
        mj_model: the compiled ``mujoco.MjModel`` (the model's own sensors only).
        muscles: muscle actuator names, in actuator order ``[muscle]``.
        joints: every hinge/slide joint (root chain included), in model order.
        tracked_joints: hinge/slide joints whose angles are tracked: not part of the root, not
            driven by a joint-equality coupling (e.g. myo-sim's knee translations).
        tracked_bodies: bodies whose positions are tracked (bodies that carry a tracked or root
            joint).
        feet: ``{"left": (body, ...), "right": (body, ...)}``: the top body of each foot's
            subtree that touches the floor; empty when the model has no floor contact.
        root_kind: ``"free"`` (free joint), ``"chain"`` (slide/hinge joints on the root body,
            as MS-Human-700), or ``"fixed"`` (welded base, e.g. the elbow).
        root_body: name of the body carrying the root joint(s) (or the first moving body).
        mass_kg: mass of all bodies that move (not welded to the world).
        content_hash: sha256 of the compiled model's XML text (first 16 hex digits).
    """

    name: str
    source: str
    mj_model: mujoco.MjModel = field(repr=False)
    spec_factory: Callable[[], mujoco.MjSpec] = field(repr=False)
    muscles: tuple[str, ...]
    joints: tuple[Joint, ...]
    tracked_joints: tuple[Joint, ...]
    tracked_bodies: tuple[str, ...]
    feet: dict[str, tuple[str, ...]]
    root_kind: str
    root_body: str
    root_joints: tuple[str, ...]
    mass_kg: float
    content_hash: str
    standing_qpos: np.ndarray = field(repr=False)

    @property
    def gravity(self) -> float:
        return float(np.linalg.norm(self.mj_model.opt.gravity))

    @property
    def body_weight_n(self) -> float:
        """Body weight in newtons (moving mass x |gravity|)."""
        return self.mass_kg * self.gravity

    @property
    def n_muscles(self) -> int:
        return len(self.muscles)

    @property
    def timestep(self) -> float:
        return float(self.mj_model.opt.timestep)

    @property
    def has_feet(self) -> bool:
        return bool(self.feet)

    @property
    def free_root_qpos(self) -> int | None:
        """Where the free root sits in ``qpos`` (3 position values, then a w-x-y-z quaternion);
        None without a free root. Every layer reads it here."""
        if self.root_kind != "free":
            return None
        return int(self.mj_model.jnt_qposadr[self.mj_model.joint(self.root_joints[0]).id])

    def require_feet(self) -> None:
        """Raise :class:`ModelError` unless the model can report ground reaction forces."""
        if not self.feet:
            raise ModelError(
                f"{self.source}: model {self.name!r} has no feet touching a floor "
                "(no floor plane, or no collision geoms on foot bodies); "
                "it cannot report ground reaction forces"
            )

    def joint(self, name: str) -> Joint:
        for j in self.joints:
            if j.name == name:
                return j
        raise ModelError(f"{self.source}: model {self.name!r} has no joint {name!r}")

    def spec(self) -> mujoco.MjSpec:
        """A fresh editable ``MjSpec`` of this model (textures already cleaned)."""
        spec = self.spec_factory()
        _drop_missing_textures(spec, Path(self.source) if Path(self.source).exists() else None)
        return spec


def _one_line(e: BaseException, limit: int = 300) -> str:
    """MuJoCo's multi-line error text folded onto one line."""
    text = " ".join(part.strip() for part in str(e).splitlines() if part.strip())
    return (text or type(e).__name__)[:limit]


def _compile(spec: mujoco.MjSpec, source: str) -> mujoco.MjModel:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return spec.compile()
    except Exception as e:  # mujoco raises ValueError with the compiler's message
        msg = _one_line(e)
        raise ModelError(f"{source}: MuJoCo could not compile the model: {msg}") from e


def _analyse(
    name: str, source: str, m: mujoco.MjModel, factory: Callable[[], mujoco.MjSpec], xml: str
) -> MuscleModel:
    is_muscle = (m.actuator_gaintype == mujoco.mjtGain.mjGAIN_MUSCLE) | (
        m.actuator_dyntype == mujoco.mjtDyn.mjDYN_MUSCLE
    )
    if m.nu == 0 or not np.any(is_muscle):
        raise ModelError(f"{source}: model has no muscle actuators (found {m.nu} actuators)")
    if not np.all(is_muscle):
        others = [m.actuator(i).name for i in np.where(~is_muscle)[0]]
        raise ModelError(f"{source}: only muscle actuators are supported; non-muscle actuators: {others[:5]}")
    muscles = tuple(m.actuator(i).name or f"muscle{i}" for i in range(m.nu))

    # Root: a free joint, or slide/hinge joints on the first moving body under the world.
    root_joints: list[int] = []
    root_kind = "fixed"
    root_body = -1
    for j in range(m.njnt):
        if int(m.jnt_type[j]) == int(mujoco.mjtJoint.mjJNT_FREE):
            root_kind, root_body, root_joints = "free", int(m.jnt_bodyid[j]), [j]
            break
    if root_kind == "fixed":
        first_moving = [b for b in range(1, m.nbody) if m.body_jntnum[b] > 0]
        if first_moving:
            b = first_moving[0]
            kinds = {int(m.jnt_type[j]) for j in range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b])}
            if m.body_parentid[b] == 0 or m.body_weldid[m.body_parentid[b]] == 0:
                has_slide = int(mujoco.mjtJoint.mjJNT_SLIDE) in kinds
                if has_slide and m.body_jntnum[b] >= 3:
                    root_kind = "chain"
                    root_joints = list(range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b]))
            root_body = b

    coupled = set()
    for e in range(m.neq):
        if m.eq_type[e] == mujoco.mjtEq.mjEQ_JOINT and m.eq_obj1id[e] >= 0:
            coupled.add(int(m.eq_obj1id[e]))

    joints = []
    for j in range(m.njnt):
        t = int(m.jnt_type[j])
        if t not in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
            continue
        joints.append(
            Joint(
                name=m.joint(j).name or f"joint{j}",
                kind="hinge" if t == int(mujoco.mjtJoint.mjJNT_HINGE) else "slide",
                qpos_index=int(m.jnt_qposadr[j]),
                dof_index=int(m.jnt_dofadr[j]),
                range=(float(m.jnt_range[j, 0]), float(m.jnt_range[j, 1])),
                limited=bool(m.jnt_limited[j]),
            )
        )
    jid = {m.joint(j).name: j for j in range(m.njnt)}
    tracked = tuple(jt for jt in joints if jid[jt.name] not in coupled and jid[jt.name] not in root_joints)
    tracked_ids = {jid[jt.name] for jt in tracked} | set(root_joints)
    tracked_bodies = tuple(
        m.body(b).name
        for b in range(1, m.nbody)
        if any(j in tracked_ids for j in range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b]))
    )

    # Feet: collision geoms on foot-like bodies that can touch a world geom (the floor).
    world_geoms = [g for g in range(m.ngeom) if m.body_weldid[m.geom_bodyid[g]] == 0]
    floor = [g for g in world_geoms if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE]
    feet: dict[str, tuple[str, ...]] = {}
    if floor:
        per_side: dict[str, set[int]] = {"left": set(), "right": set()}
        for g in range(m.ngeom):
            b = m.geom_bodyid[g]
            if m.body_weldid[b] == 0:
                continue
            touches = any(
                (m.geom_contype[g] & m.geom_conaffinity[f]) or (m.geom_contype[f] & m.geom_conaffinity[g])
                for f in floor
            )
            bname = m.body(b).name
            side = _side_of(bname)
            if touches and side and _FOOT_PATTERN.search(bname):
                per_side[side].add(int(b))
        for side, bodies in per_side.items():
            # keep only the top-most bodies: a contact sensor on a subtree covers the rest
            tops = []
            for b in sorted(bodies):
                p, covered = int(m.body_parentid[b]), False
                while p > 0:
                    if p in bodies:
                        covered = True
                        break
                    p = int(m.body_parentid[p])
                if not covered:
                    tops.append(m.body(b).name)
            if tops:
                feet[side] = tuple(tops)
        if set(feet) != {"left", "right"}:
            feet = {}

    moving = m.body_weldid != 0
    mass = float(np.sum(m.body_mass[moving]))
    standing = m.key_qpos[0].copy() if m.nkey > 0 else m.qpos0.copy()
    return MuscleModel(
        name=name,
        source=source,
        mj_model=m,
        spec_factory=factory,
        muscles=muscles,
        joints=tuple(joints),
        tracked_joints=tracked,
        tracked_bodies=tracked_bodies,
        feet=feet,
        root_kind=root_kind,
        root_body=m.body(root_body).name if root_body > 0 else "world",
        root_joints=tuple(m.joint(j).name for j in root_joints),
        mass_kg=mass,
        content_hash=hashlib.sha256(xml.encode()).hexdigest()[:16],
        standing_qpos=standing,
    )


MYO_SIM_PREFIX = "myo-sim:"


def _myo_sim_factory(name: str) -> Callable[[], mujoco.MjSpec]:
    """Any model of myo-sim's registry, as ``myo-sim:NAME`` (e.g. ``myo-sim:myolegs26``)."""
    import myo_sim

    known = sorted(set(myo_sim.REGISTRY) | set(myo_sim._composed_models()))
    if name not in known:
        raise ModelError(f"{MYO_SIM_PREFIX}{name}: not a myo-sim model (known: {', '.join(known)})")

    return lambda: _myo_sim_spec(name)


def load_model(name_or_path: str | Path, edit: SpecEdit | None = None) -> MuscleModel:
    """Load a built-in model by name, or any MJCF file with muscle actuators by path.

    Args:
        name_or_path: ``"elbow"``, ``"myolegs"``, ``"myofullbody"``, ``"myo-sim:NAME"`` for any
            model of myo-sim's registry, or a path to an ``.xml``.
        edit: optional function that edits the ``MjSpec`` before compiling (e.g. to stiffen
            joints in a test); the edit is applied to every spec the model hands out.

    Raises:
        ModelError: unknown name, unreadable or invalid file, no muscle actuators.
    """
    key = str(name_or_path)
    if key in BUILTIN_MODELS:
        base_factory = BUILTIN_MODELS[key].spec
        name, source = key, key
    elif key.startswith(MYO_SIM_PREFIX):
        base_factory = _myo_sim_factory(key[len(MYO_SIM_PREFIX) :])
        name, source = key[len(MYO_SIM_PREFIX) :], key
    else:
        path = Path(key).expanduser()
        if not path.exists():
            known = ", ".join(BUILTIN_MODELS)
            raise ModelError(f"{key}: no such model file, and not a built-in model ({known})")
        if path.is_dir() or path.suffix.lower() not in (".xml", ".mjcf"):
            raise ModelError(f"{path}: expected an MJCF .xml file")
        path = path.resolve()

        def base_factory(path=path):
            try:
                return mujoco.MjSpec.from_file(str(path))
            except Exception as e:
                raise ModelError(f"{path}: not a readable MJCF model: {_one_line(e)}") from e

        name, source = path.stem, str(path)

    def factory() -> mujoco.MjSpec:
        spec = base_factory()
        if edit is not None:
            edit(spec)
        return spec

    spec = factory()
    _drop_missing_textures(spec, Path(source) if Path(source).exists() else None)
    m = _compile(spec, source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            xml = _portable_xml(spec.to_xml())
    except Exception:  # some composed specs cannot be serialised; hash the binary sizes instead
        xml = f"{m.nq}:{m.nv}:{m.nu}:{m.nbody}:{np.asarray(m.body_mass).tobytes().hex()}"
    return _analyse(name, source, m, factory, xml)


_PATH_ATTR = re.compile(r'\b(file|meshdir|texturedir|assetdir)="([^"]*)"')


def _portable_xml(xml: str) -> str:
    """The XML with file paths cut to their base names, so the content hash is the same
    wherever the package (and its mesh files) is installed."""
    return _PATH_ATTR.sub(lambda mt: f'{mt.group(1)}="{Path(mt.group(2)).name}"', xml)


def describe(model: MuscleModel) -> dict:
    """A JSON-ready description: names, counts, mass, feet, root."""
    m = model.mj_model
    return {
        "name": model.name,
        "source": model.source,
        "n_muscles": model.n_muscles,
        "n_joints": int(m.njnt),
        "n_dof": int(m.nv),
        "n_tracked_joints": len(model.tracked_joints),
        "mass_kg": round(model.mass_kg, 3),
        "body_weight_n": round(model.body_weight_n, 2),
        "root_kind": model.root_kind,
        "root_body": model.root_body,
        "timestep_s": model.timestep,
        "muscles": list(model.muscles),
        "joints": [m.joint(j).name for j in range(m.njnt)],
        "tracked_joints": [
            {
                "name": j.name,
                "kind": j.kind,
                "min": j.range[0],
                "max": j.range[1],
                "units": "rad" if j.angular else "m",
            }
            for j in model.tracked_joints
        ],
        "tracked_bodies": list(model.tracked_bodies),
        "feet": {k: list(v) for k, v in model.feet.items()},
        "content_hash": model.content_hash,
    }
