"""Input side of retargeting: point maps (TOML) that say which input points are which model
landmarks and which skin markers ride on which segment."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from emulator.motion.formats.base import MarkerSet
from emulator.motion.retarget.errors import RetargetError
from emulator.motion.retarget.landmarks import _LANDMARK_BODIES, _SEGMENT_BODIES, _expand

# ---------------------------------------------------------------------------------------------
# Input side: point maps


@dataclass(frozen=True)
class PointMap:
    """Which input points are which model landmarks, and which skin markers ride on which segment.

    Attributes:
        name: map name (``falisse2019``).
        keypoints: ``{landmark: [input point names]}``; the landmark's data position is the mean
            of the listed points (a midpoint for a lateral/medial marker pair).
        segments: ``{segment: [marker names]}``; offsets calibrated from the data.
        pelvis_rule: optional ``{"rule": "harrington", "asis": [R, L], "psis": [R, L]}``: hip
            joint centres (``hip_r``, ``hip_l``) by Harrington et al. (2007) regression from the
            pelvis markers, plus the mid-ASIS/mid-PSIS points to orient the pelvis.
        up: the up axis the map's data are usually in (informational).
        description: provenance of the map.
    """

    name: str
    keypoints: dict[str, tuple[str, ...]]
    segments: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pelvis_rule: dict | None = None
    description: str = ""
    source: str = ""

    @staticmethod
    def from_toml(path: str | Path) -> PointMap:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise RetargetError(f"{path}: no such point-map file") from None
        except tomllib.TOMLDecodeError as e:
            raise RetargetError(f"{path}: not valid TOML ({e})") from None
        return PointMap.from_dict(data, source=str(path))

    @staticmethod
    def from_dict(data: dict, source: str = "") -> PointMap:
        where = source or data.get("name", "point map")
        known = set(_expand(_LANDMARK_BODIES)) | {"pelvis_front", "pelvis_back", "toe_tip_r", "toe_tip_l"}
        kp = {}
        for k, v in data.get("keypoints", {}).items():
            if k not in known and not k.startswith("body:"):
                raise RetargetError(f"{where}: keypoint {k!r} is not a landmark (known: {sorted(known)})")
            kp[k] = (v,) if isinstance(v, str) else tuple(v)
        segs = {}
        known_segs = set(_expand(_SEGMENT_BODIES))
        for k, v in data.get("segments", {}).items():
            if k not in known_segs and not k.startswith("body:"):
                raise RetargetError(f"{where}: segment {k!r} is not known (known: {sorted(known_segs)})")
            segs[k] = (v,) if isinstance(v, str) else tuple(v)
        rule = data.get("pelvis_rule")
        if rule is not None:
            if (
                rule.get("rule") != "harrington"
                or len(rule.get("asis", [])) != 2
                or len(rule.get("psis", [])) != 2
            ):
                raise RetargetError(
                    f"{where}: pelvis_rule must be {{rule='harrington', asis=[R, L], psis=[R, L]}}, got {rule}"
                )
        if not kp and not rule:
            raise RetargetError(f"{where}: map names no keypoints")
        return PointMap(
            data.get("name", Path(source).stem), kp, segs, rule, data.get("description", ""), source
        )

    def points_used(self) -> set[str]:
        used = {p for v in self.keypoints.values() for p in v} | {
            p for v in self.segments.values() for p in v
        }
        if self.pelvis_rule:
            used |= set(self.pelvis_rule["asis"]) | set(self.pelvis_rule["psis"])
        return used


_MAP_PACKAGE = "emulator.maps"


def known_maps() -> dict[str, str]:
    """``{name: description}`` of the shipped point maps."""
    out = {}
    for f in sorted(resources.files(_MAP_PACKAGE).iterdir(), key=lambda p: p.name):
        if f.name.endswith(".toml"):
            out[f.name[:-5]] = tomllib.loads(f.read_text()).get("description", "")
    return out


def load_map(name_or_path: str | Path | PointMap) -> PointMap:
    """A shipped map by name (``falisse2019``, ``smpl``, ``landmarks``) or a TOML file."""
    if isinstance(name_or_path, PointMap):
        return name_or_path
    s = str(name_or_path)
    f = resources.files(_MAP_PACKAGE) / f"{s}.toml"
    if not s.endswith(".toml") and f.is_file():
        m = PointMap.from_dict(tomllib.loads(f.read_text()), source=f"map {s}")
        return m
    if Path(s).is_file():
        return PointMap.from_toml(s)
    raise RetargetError(f"no point map {s!r}: not a shipped map ({sorted(known_maps())}) nor a file")


def guess_map(points: MarkerSet) -> PointMap:
    """The shipped map that uses the most of these points (at least 3)."""
    best, best_n = None, 0
    for name in known_maps():
        pm = load_map(name)
        n = len(pm.points_used() & set(points.names))
        if n > best_n:
            best, best_n = pm, n
    if best is None or best_n < 3:
        raise RetargetError(
            f"{points.source}: no shipped point map matches these point names ({list(points.names)[:8]}...); "
            "pass --map FILE (see README, 'Point maps')"
        )
    return best
