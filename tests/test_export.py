"""`diversity export`: a myolegs store as OpenSim files that OpenSim 4.6 itself reads, and as
tidy CSV; values are the store's, converted only in units and axes."""

import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from diversity.cli import app

runner = CliRunner()


def _read_table(path):
    lines = path.read_text().splitlines()
    end = lines.index("endheader")
    header = dict(line.split("=", 1) for line in lines[1:end] if "=" in line)
    cols = lines[end + 1].split("\t")
    data = np.loadtxt(path, skiprows=end + 2, delimiter="\t", ndmin=2)
    return header, cols, data


def test_opensim_export_holds_the_store_values(legs_store, tmp_path):
    res = runner.invoke(
        app, ["export", str(legs_store), "--format", "opensim", "--out", str(tmp_path / "os")]
    )
    assert res.exit_code == 0, res.output
    folder = tmp_path / "os" / "seed_0000"
    ds = xr.open_zarr(legs_store).sel(seed=0)
    muscles = [str(m) for m in ds["muscle"].values]

    header, cols, act = _read_table(folder / "activation.sto")
    assert cols == ["time", *muscles] and header["inDegrees"] == "no"
    np.testing.assert_allclose(act[:, 0], ds["time"].values, atol=1e-6)
    np.testing.assert_allclose(act[:, 1:], ds["activation"].values, rtol=1e-6, atol=1e-9)

    header, cols, coords = _read_table(folder / "coordinates.mot")
    assert header["inDegrees"] == "yes"
    knee = cols.index("knee_angle_r")
    k = [str(j) for j in ds["joint"].values].index("knee_angle_r")
    np.testing.assert_allclose(
        coords[:, knee], np.degrees(ds["joint_angle"].values[:, k]), rtol=1e-6, atol=1e-6
    )
    # z up -> y up: the root height is OpenSim's y
    np.testing.assert_allclose(coords[:, cols.index("root_ty")], ds["root_position"].values[:, 2], atol=1e-6)

    _, cols, grf = _read_table(folder / "grf.mot")
    right = [str(f) for f in ds["foot"].values].index("right")
    np.testing.assert_allclose(
        grf[:, cols.index("ground_force_r_vy")], ds["grf"].values[:, right, 2], atol=1e-4
    )
    loaded = ds["grf"].values[:, right, 2] > 1.0
    cop_y = grf[:, cols.index("ground_force_r_py")]
    assert np.all(np.abs(cop_y[loaded] - 0.015) < 0.02)  # on the floor (z = 0.015 m in the model)

    doc = ET.parse(folder / "external_loads.xml").getroot()
    forces = doc.findall(".//ExternalForce")
    assert len(forces) == 2 and doc.find(".//datafile").text == "grf.mot"
    assert {f.find("applied_to_body").text for f in forces} == {"calcn_r", "calcn_l"}


def test_opensim_reads_every_exported_file(legs_store, tmp_path):
    osim = pytest.importorskip("opensim")
    runner.invoke(app, ["export", str(legs_store), "--out", str(tmp_path)])
    folder = tmp_path / "seed_0000"
    n = xr.open_zarr(legs_store).sizes["time"]
    for name in ("activation.sto", "excitation.sto", "muscle_force.sto", "coordinates.mot", "grf.mot"):
        table = osim.TimeSeriesTable(str(folder / name))
        assert table.getNumRows() == n, name
        assert osim.Storage(str(folder / name)).getSize() == n, name
    table = osim.TimeSeriesTable(str(folder / "activation.sto"))
    assert table.getNumColumns() == 80 and "soleus_r" in list(table.getColumnLabels())
    loads = osim.ExternalLoads(str(folder / "external_loads.xml"), True)
    assert loads.getSize() == 2 and loads.getDataFileName() == "grf.mot"
    assert {loads.get(i).get_applied_to_body() for i in range(2)} == {"calcn_r", "calcn_l"}


def test_csv_export_and_errors(legs_store, tmp_path):
    res = runner.invoke(app, ["export", str(legs_store), "--format", "csv", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    import pandas as pd

    table = pd.read_csv(tmp_path / "c" / "seed_0000.csv")
    ds = xr.open_zarr(legs_store).sel(seed=0)
    rows = table[(table.variable == "activation") & (table.element == "soleus_r")]
    m = [str(x) for x in ds["muscle"].values].index("soleus_r")
    np.testing.assert_allclose(rows.value.values, ds["activation"].values[:, m], rtol=1e-5, atol=1e-7)
    assert set(table.units[table.variable == "grf"]) == {"N"}

    res = runner.invoke(app, ["export", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "no such store" in res.output and len(res.output.strip().splitlines()) == 1
    broken = tmp_path / "broken.zarr"
    shutil.copytree(legs_store, broken)
    shutil.rmtree(broken / "activation")
    res = runner.invoke(app, ["export", str(broken), "--out", str(tmp_path / "y")])
    assert res.exit_code == 2 and "damaged" in res.output and not (tmp_path / "y").exists()
