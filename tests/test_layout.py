"""The code's shape, checked: no import cycle between the project's modules (imports inside
functions count), no module over 700 lines, and the two layers keep to their side
(``emulator`` never imports xarray or zarr; ``diversity`` never imports MuJoCo)."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("emulator", "diversity")


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: pathlib.Path) -> set[str]:
    """Every module this one imports, anywhere in its body (top level or inside functions):
    ``from pkg import x`` counts as importing ``pkg.x`` when that is a module, else ``pkg``."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = base[: len(base) - node.level + 1]
                mod = ".".join(pkg + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                found.add(sub if sub in MODULES else mod)
    return {m for m in found if m in MODULES and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_the_projects_modules():
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    assert _cycles(graph) == []  # (a package's __init__ importing its children counts too)


def test_no_module_over_700_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 700}
    assert not long, long


def test_the_layers_keep_to_their_side():
    for name, path in MODULES.items():
        text = path.read_text()
        tree = ast.parse(text)
        roots = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                roots.add(node.module.split(".")[0])
        if name.startswith("emulator"):
            assert not roots & {"xarray", "zarr", "diversity"}, name
        else:
            assert "mujoco" not in roots, name


def test_the_module_names_of_earlier_releases_still_import():
    """Users' code and notebooks written against the flat layout keep working."""
    import importlib

    from emulator.learning.train import Trainer
    from emulator.motion.formats.c3d import read_c3d
    from emulator.motion.retarget import retarget_points
    from emulator.motion.sources import load_motion
    from emulator.paths import datasets_dir
    from emulator.simulation.env import EnvConfig

    old = importlib.import_module
    assert old("emulator.env").EnvConfig is EnvConfig
    assert old("emulator.train").Trainer is Trainer
    assert old("emulator.formats.c3d").read_c3d is read_c3d
    assert old("emulator.retarget").load_motion is load_motion
    assert old("emulator.retarget").retarget_points is retarget_points
    assert old("emulator.demos").datasets_dir is datasets_dir
    assert old("emulator.agents.ppo").PPOConfig.__module__ == "emulator.learning.agents.ppo"
