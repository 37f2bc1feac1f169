"""The notebooks run top to bottom on small data (their parameters cell is replaced)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# {STORE} is the session's two-seed myolegs walking store (tests/conftest.py): the gait and
# solution-space notebooks read it as a user reads theirs; the quickstart trains its own
SMALL = {
    "01_quickstart.ipynb": "SEEDS = 2\nSTEPS = 512\nSTORE = 'quickstart.zarr'",
    "02_gait_emg_grf.ipynb": "STORE = {STORE!r}\nSEEDS = 2\nSTEPS = 256\nN_BOOT = 50",
    "03_solution_space.ipynb": "STORE = {STORE!r}\nSEEDS = 3\nSTEPS = 512",
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs(name, tmp_path, request):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    given = "{STORE" in SMALL[name]
    store = str(request.getfixturevalue("legs_store")) if given else None
    params[0].source = SMALL[name].format(STORE=store)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"
    ]
    assert not errors
    if not given:
        assert list(tmp_path.glob("*.zarr")), "the notebook wrote no store"
