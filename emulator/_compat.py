"""The module names of earlier releases, kept importable: ``emulator.env``, ``emulator.train``,
``emulator.formats.c3d``, ``emulator.demos`` ... resolve to their places in the layered tree
(``emulator.simulation.env``, ``emulator.learning.train``, ...). Nothing in the project imports
the old names; this only keeps users' code and notebooks working."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types

# old name (and, for packages, every module under it) -> new name
MOVED = {
    "emulator.types": "emulator.simulation.signals",
    "emulator.physics": "emulator.simulation.physics",
    "emulator.env": "emulator.simulation.env",
    "emulator.gym": "emulator.simulation.gym",
    "emulator.render": "emulator.simulation.render",
    "emulator.rewards": "emulator.learning.rewards",
    "emulator.agents": "emulator.learning.agents",
    "emulator.train": "emulator.learning.train",
    "emulator.rollout": "emulator.learning.rollout",
    "emulator.policies": "emulator.learning.policies",
    "emulator.formats": "emulator.motion.formats",
    "emulator.maps": "emulator.motion.maps",
}
# old modules whose contents now live in several places
MERGED = {
    "emulator.demos": ("emulator.motion.sources", "emulator.paths"),
    "emulator.retarget": ("emulator.motion.retarget", "emulator.motion.sources"),
}


def _target(name: str) -> str | tuple[str, ...] | None:
    if name in MERGED:
        return MERGED[name]
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old) :]
    return None


class _Merged(types.ModuleType):
    def __init__(self, name: str, targets: tuple[str, ...]):
        super().__init__(name, f"compatibility view of {', '.join(targets)}")
        self._targets = targets

    def __getattr__(self, attr):
        for t in self._targets:
            module = importlib.import_module(t)
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if _target(name) is not None else None

    def create_module(self, spec):
        return types.ModuleType(spec.name)  # a placeholder; exec_module puts the real one in place

    def exec_module(self, module):
        new = _target(module.__name__)
        if isinstance(new, tuple):
            sys.modules[module.__name__] = _Merged(module.__name__, new)
        else:  # the import system returns what sys.modules holds after exec_module
            sys.modules[module.__name__] = importlib.import_module(new)


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())  # before any finder that might see a stale copy
