"""`diversity run` stores: schema, validator, resume, refusals, bad inputs, Dask.

One tiny 4-seed elbow run (seconds of training) is shared by the tests in this module.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from typer.testing import CliRunner

from diversity.cli import app
from diversity.config import ConfigError, load_config
from diversity.pipeline import run
from diversity.store import StoreError, validate_store

from .conftest import TINY_RUN as TINY

TINY_TOML = """
seeds = 4
steps = 384
n_envs = 4
cycles = 0.5
block_size = 2
checkpoint_every = 1
[ppo]
hidden = [32, 32]
"""


def _tree_bytes(path, skip_root=False):
    """sha256 of every file under ``path`` (the root zarr.json optionally left out)."""
    out = {}
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path).as_posix()
        if f.is_file() and not (skip_root and rel == "zarr.json"):
            out[rel] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def test_store_opens_with_documented_schema(store):
    ds = xr.open_zarr(store)  # plain xarray, consolidated metadata
    assert {"seed", "time", "muscle", "joint", "component", "iteration"} <= set(ds.dims)
    assert ds.sizes["seed"] == 4 and ds.sizes["muscle"] == 6 and ds.sizes["joint"] == 2
    assert ds["seed"].values.tolist() == [0, 1, 2, 3]
    assert list(ds["joint"].values) == ["r_shoulder_elev", "r_elbow_flex"]
    assert list(ds["muscle"].values)[:2] == ["TRIlong", "TRIlat"]
    assert ds["activation"].dims == ("seed", "time", "muscle")
    assert ds["joint_angle"].dims == ("seed", "time", "joint")
    assert ds["reference_joint_angle"].dims == ("time", "joint")
    # time in seconds at the control rate; 0.5 cycle of the 2 s flexion motion
    np.testing.assert_allclose(np.diff(ds["time"].values), 0.01)
    assert ds.sizes["time"] == 100 and ds["time"].attrs["units"] == "s"
    for name, v in ds.data_vars.items():
        assert "units" in v.attrs and "long_name" in v.attrs, name
    assert ds["activation"].attrs["units"] == "1" and ds["muscle_force"].attrs["units"] == "N"
    assert ds["joint_angle_error"].attrs["units"] == "deg"
    # chunks one seed wide, so concurrent writers never share a chunk
    assert ds["activation"].encoding["chunks"][0] == 1
    a = ds.attrs
    assert a["schema_version"] == "1" and a["Conventions"].startswith("CF-")
    assert a["model"] == "elbow" and a["motion"] == "elbow_flexion" and len(a["model_hash"]) == 16
    cfg = json.loads(a["config"])
    assert (
        cfg["seeds"] == [0, 1, 2, 3]
        and cfg["reward"] == "exp"
        and cfg["train_resolved"]["total_steps"] == 384
    )
    assert a["created"] <= a["updated"] and a["package_version"]
    # real data: activations in [0, 1], joint angles near the reference, all seeds completed
    act = ds["activation"].values
    assert np.all((act >= 0) & (act <= 1)) and not np.isnan(act).any()
    assert ds["completed"].values.tolist() == [1, 1, 1, 1]
    err = np.abs(ds["joint_angle"] - ds["reference_joint_angle"]).mean(("time", "joint"))
    assert np.all(np.degrees(err.values) < 90)
    assert validate_store(store) == []


def test_info_json_and_api(store):
    import diversity

    res = CliRunner().invoke(app, ["info", str(store), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["completed_seeds"] == [0, 1, 2, 3] and info["n_seeds"] == 4
    assert info["model"] == "elbow" and info["motion"] == "elbow_flexion" and info["problems"] == []
    m = info["metrics"]["joint_angle_error"]
    ds = diversity.open_store(store)
    per_seed = ds["joint_angle_error"].mean("time").values
    assert m["median"] == pytest.approx(float(np.median(per_seed)), rel=1e-5)
    q1, q3 = np.percentile(per_seed, [25, 75])
    assert m["iqr"] == pytest.approx(float(q3 - q1), rel=1e-4, abs=1e-6)
    assert diversity.info(store)["completed_seeds"] == [0, 1, 2, 3]


def test_validator_names_what_is_wrong(store, tmp_path):
    missing = tmp_path / "missing.zarr"
    shutil.copytree(store, missing)
    shutil.rmtree(missing / "activation")
    with pytest.warns(UserWarning, match="onsolidated"):
        zarr.consolidate_metadata(missing)
    problems = validate_store(missing)
    assert any("'activation' is missing" in p for p in problems), problems

    bad_flag = tmp_path / "flag.zarr"
    shutil.copytree(store, bad_flag)
    zarr.open_array(bad_flag / "completed", mode="r+")[1] = 3
    assert any("completed[seed=1] = 3" in p for p in validate_store(bad_flag))

    unwritten = tmp_path / "unwritten.zarr"
    shutil.copytree(store, unwritten)
    shutil.rmtree(unwritten / "joint_angle" / "c" / "2")  # seed 2's chunk gone, flag still 1
    assert any(
        "seed 2 is marked completed but 'joint_angle' holds no data" in p for p in validate_store(unwritten)
    )

    res = CliRunner().invoke(app, ["info", str(bad_flag)])
    assert res.exit_code == 1 and "completed[seed=1] = 3" in res.output


def test_rerun_resumes_and_other_runs_are_refused(store, tmp_path, monkeypatch):
    copy = tmp_path / "again.zarr"
    shutil.copytree(store, copy)
    before = _tree_bytes(copy)
    report = run(TINY, copy)  # everything done: nothing trained, no chunk rewritten
    assert report.trained == [] and report.skipped == [0, 1, 2, 3]
    after = _tree_bytes(copy)
    assert {k: v for k, v in after.items() if k != "zarr.json"} == {
        k: v for k, v in before.items() if k != "zarr.json"
    }

    # a store written before an option existed (its identity lacks it) is the same run when
    # the option is at its default: it resumes, and a real difference is still named
    group = zarr.open_group(copy, mode="r+")
    ident = json.loads(group.attrs["identity"])
    del ident["train"]["env"]["physics_dt"]
    group.attrs["identity"] = json.dumps(ident, sort_keys=True)
    assert run(TINY, copy).trained == []

    before = _tree_bytes(copy)
    with pytest.raises(StoreError, match="different run.*reward"):
        run(TINY.replace(reward="add"), copy)
    assert _tree_bytes(copy) == before  # refused before touching anything

    # a store written by a version with other axes (here: one tracking-error component fewer
    # than this code writes) is named, not written into; --force replaces it
    import dataclasses

    import diversity.pipeline as pipeline

    real = pipeline._prepared

    def one_more_component(config_json):
        config, trainer, schema = real(config_json)
        coords = dict(schema.coords, component=[*schema.coords["component"], "root_future"])
        return config, trainer, dataclasses.replace(schema, coords=coords)

    monkeypatch.setattr(pipeline, "_prepared", one_more_component)
    with pytest.raises(StoreError, match=r"other axes .*component: \d+ in the store, \d+ now"):
        run(TINY, copy)
    assert _tree_bytes(copy) == before
    monkeypatch.setattr(pipeline, "_prepared", real)

    # a damaged store is reported, never silently overwritten
    zarr.open_array(copy / "completed", mode="r+")[0] = 7
    before = _tree_bytes(copy)
    with pytest.raises(StoreError, match="damaged.*completed\\[seed=0\\] = 7"):
        run(TINY, copy)
    assert _tree_bytes(copy) == before


def _cli(*args):
    return CliRunner().invoke(app, ["run", *args])


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "nosuchmodel"], "nosuchmodel"),
        (["--motion", "nosuchmotion"], "no demo motion 'nosuchmotion'"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--seed-list", "1,x"], "'x' is not a seed id"),
        (["--algo", "sac"], "algo must be one of"),
        (["--scheduler", "nowhere"], "scheduler"),
    ],
)
def test_bad_inputs_fail_fast_with_one_line(store, tmp_path, args, message):
    copy = tmp_path / "keep.zarr"
    shutil.copytree(store, copy)
    before = _tree_bytes(copy)
    res = _cli("--out", str(copy), *args)
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert _tree_bytes(copy) == before


def test_mismatched_motion_unwritable_out_and_other_store(store, tmp_path):
    from emulator.motion.sources import find_demo

    res = _cli("--motion", str(find_demo("walk", "myolegs")), "--out", str(tmp_path / "x.zarr"))
    assert res.exit_code == 2 and "joint 'root' is not in model 'elbow'" in res.output, res.output
    assert not (tmp_path / "x.zarr").exists()

    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    res = _cli("--out", str(blocker / "store.zarr"))
    assert res.exit_code == 2 and "cannot write here" in res.output, res.output

    res = _cli("--out", str(blocker))
    assert res.exit_code == 2 and "not a directory" in res.output

    other = tmp_path / "other.zarr"
    shutil.copytree(store, other)
    before = _tree_bytes(other)
    res = _cli("--out", str(other), "--reward", "add")
    assert res.exit_code == 2 and "different run" in res.output and "--force" in res.output
    assert _tree_bytes(other) == before


def test_toml_config_and_its_errors(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text(TINY_TOML)
    cfg, opts = load_config(f)
    assert cfg.identity() == TINY.identity() and opts == {}
    f.write_text(TINY_TOML + "\n[ppo]\nwidth = 3\n")
    with pytest.raises(ConfigError, match="run.toml"):
        load_config(f)
    f.write_text("seeds = 0\n")
    with pytest.raises(ConfigError, match="seeds must be >= 1"):
        load_config(f)
    f.write_text("colour = 'red'\n")
    with pytest.raises(ConfigError, match="unknown keys \\['colour'\\]"):
        load_config(f)
    f.write_text(TINY_TOML + "\n[exp.sigmas]\nroot = 0.1\n")  # a reward family that does not exist
    with pytest.raises(ConfigError, match=r"run\.toml: exp sigmas: unknown families \['root'\]"):
        load_config(f)


def test_a_recipe_extends_another_and_changes_only_what_it_sets(tmp_path):
    """``extends``: the variant reads its base first (a path relative to the variant), tables
    merge at every depth, lists replace; a missing base or a loop is named."""
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "walk.toml").write_text(
        TINY_TOML + "\n[env]\ncontrol_dt = 0.02\nfuture_frames = [1, 2, 5]\n"
        "[exp.weights]\njoint_angle = 0.35\nroot_translation = 0.15\n"
    )
    variant = tmp_path / "assist.toml"
    variant.write_text(
        'extends = "base/walk.toml"\nsteps = 256\n[env]\nfuture_frames = [1]\n'
        "[exp.weights]\nroot_translation = 0.4\n"
    )
    cfg, _ = load_config(variant)
    plain, _ = load_config(tmp_path / "base" / "walk.toml")
    train = cfg.train_config()
    assert cfg.steps == 256 and plain.steps != 256
    assert train.env.control_dt == 0.02 and train.env.future_frames == (1,)
    assert train.exp.weights["joint_angle"] == 0.35 and train.exp.weights["root_translation"] == 0.4
    assert cfg.replace(steps=plain.steps, train=plain.train).identity() == plain.identity()
    variant.write_text('extends = "base/missing.toml"\n')
    with pytest.raises(
        ConfigError, match=r"missing\.toml: no such config file \(extended by .*assist\.toml\)"
    ):
        load_config(variant)
    variant.write_text('extends = "assist.toml"\n')
    with pytest.raises(ConfigError, match="makes a loop"):
        load_config(variant)


@pytest.mark.parametrize(
    "recipe", sorted((Path(__file__).parents[1] / "benchmarks" / "recipes").glob("*.toml"))
)
def test_shipped_recipes_load(recipe):
    """The recipes docs/walking.md tells people to run parse into the training they describe."""
    cfg, _ = load_config(recipe)
    train = cfg.train_config()
    assert train.model == cfg.model and train.env.control_dt > 0


@pytest.mark.slow  # ~75 s: each worker process compiles the run anew
def test_dask_local_cluster_writes_the_same_store(store, tmp_path):
    """Two Dask worker processes, one seed block each, give the in-process store's numbers."""
    out = tmp_path / "dask.zarr"
    report = run(TINY, out, scheduler="local")
    assert sorted(report.trained) == [0, 1, 2, 3]
    a, b = xr.open_zarr(store), xr.open_zarr(out)
    assert validate_store(out) == []
    for name in ("activation", "joint_angle", "muscle_force", "joint_angle_error", "train_reward"):
        np.testing.assert_allclose(b[name].values, a[name].values, rtol=1e-5, atol=1e-6, err_msg=name)
    assert b.attrs["identity"] == a.attrs["identity"]


def test_a_cluster_of_threads_in_one_process_is_refused_before_training(tmp_path):
    """Worker threads sharing one process would train two blocks at once in it (that crashes
    MuJoCo/XLA): refused with a message that says what to start instead; no seed is trained."""
    from distributed import LocalCluster

    out = tmp_path / "threads.zarr"
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", dashboard_address=None
    ) as cluster:
        with pytest.raises(ConfigError, match="worker threads in one process"):
            run(TINY, out, scheduler=cluster.scheduler_address)
    if out.exists():  # the store template may be there, with no seed in it
        assert not xr.open_zarr(out)["completed"].values.any()


@pytest.mark.mjx
@pytest.mark.slow  # ~3-6 min on 2 cores: MJX compiles for training and for the rollout
def test_mjx_backend_run_writes_a_valid_store(tmp_path):
    """The GPU path end to end on CPU: MJX physics for training and rollout, same store schema."""
    out = tmp_path / "mjx.zarr"
    cfg = TINY.replace(seeds=(0, 1), backend="mjx", steps=4 * 32, cycles=0.25)
    report = run(cfg, out)
    assert report.completed == [0, 1] and validate_store(out) == []
    ds = xr.open_zarr(out)
    assert json.loads(ds.attrs["config"])["backend"] == "mjx"
    act = ds["activation"].values
    assert np.isfinite(act).all() and ((act >= 0) & (act <= 1)).all()


def test_each_model_runs_its_own_motion_by_default(tmp_path):
    """`diversity run --model myolegs` with no --motion trains on the measured walk (it used to
    look for the elbow's motion); a named motion is kept; a model by path must name one."""
    from diversity.config import RunConfig

    assert RunConfig().motion == "elbow_flexion"
    assert RunConfig(model="myolegs").motion == "walk"
    assert RunConfig().replace(model="myofullbody").motion == "walk"
    assert RunConfig(motion="run").replace(model="myolegs").motion == "run"
    f = tmp_path / "run.toml"
    f.write_text('model = "myolegs"\nseeds = 1\n')
    assert load_config(f)[0].train_config().motion == "walk"
    with pytest.raises(ConfigError, match="no default motion"):
        RunConfig(model=str(tmp_path / "arm.xml"))


def test_store_records_what_the_numbers_depend_on(store):
    """Versions of the project, jax, jaxlib, mujoco and numpy, the XLA/thread settings and the
    device that wrote the store."""
    rec = json.loads(xr.open_zarr(store).attrs["reproducibility"])
    assert {"ms-diversity", "jax", "jaxlib", "mujoco", "numpy"} <= set(rec["versions"])
    assert rec["device"]["platform"] == "cpu" and rec["physics"]["backend"] == "cpu"
    assert "XLA_FLAGS" in rec["settings"]  # the test session sets it (tests/conftest.py)
    assert rec["machine"]["cores"] >= 1 and rec["python"].count(".") == 2


@pytest.mark.parametrize("command", ["analyze", "figures", "export", "info"])
def test_damaged_or_missing_stores_get_one_clear_error_from_every_command(store, tmp_path, command):
    """A lost chunk of a completed seed (zarr would read it as fill values), a file where a store
    should be, and a missing path: one line, no traceback, nothing written into the store."""
    damaged = tmp_path / "damaged.zarr"
    shutil.copytree(store, damaged)
    chunk = next(p for p in sorted((damaged / "activation" / "c").rglob("*")) if p.is_file())
    chunk.unlink()
    before = _tree_bytes(damaged)
    a_file = tmp_path / "file.zarr"
    a_file.write_text("not a store")
    for target, words in ((damaged, "activation"), (a_file, "not a"), (tmp_path / "none.zarr", "no")):
        args = [command, str(target)] + (
            [] if command == "info" else ["--out", str(tmp_path / f"o_{command}")]
        )
        res = CliRunner().invoke(app, args)
        assert res.exit_code in ((1, 2) if command == "info" else (2,)), (target, res.output)
        assert "Traceback" not in res.output and words in res.output, (target, res.output)
        if command != "info":
            assert len(res.output.strip().splitlines()) == 1, res.output
            assert not (tmp_path / f"o_{command}").exists()  # no output written
    assert _tree_bytes(damaged) == before


def test_progress_counts_resumed_steps_as_done_but_not_into_the_eta():
    import io

    from rich.console import Console

    from diversity.progress import RichProgress

    out = io.StringIO()
    p = RichProgress(console=Console(file=out, force_terminal=False, width=200), log_every_s=0.0)
    p.start(n_seeds=1, n_done=0, total_steps=1000, store="s.zarr")
    p.resumed(600)  # a checkpoint at 60 %
    p.t0 -= 10.0  # this run has been going 10 s ...
    p.update(steps=100, steps_per_s=10.0, joint_angle_error_deg=3.0)  # ... for 100 new steps
    line = out.getvalue().strip().splitlines()[-1]
    assert " 70%" in line and "ETA 30 s" in line, line  # 300 steps left at 10 steps/s
    assert "episode" not in line  # no episode ended: nothing to report
    p.update(steps=100, steps_per_s=10.0, joint_angle_error_deg=3.0, episode_length_s=0.85)
    assert "episode 0.85 s" in out.getvalue().strip().splitlines()[-1]


def test_the_store_names_dims_and_units_come_from_the_one_schema_table(store):
    """Every variable, metric, curve and coordinate of a store has the dims and units the
    emulator's schema table gives it; the env's metric names and the trainer's curve names are
    that table's."""
    from emulator import schema
    from emulator.learning.train import CURVE_NAMES
    from emulator.simulation.env import METRIC_NAMES

    assert METRIC_NAMES == tuple(schema.METRICS) and CURVE_NAMES == tuple(schema.CURVES)
    ds = xr.open_zarr(store)
    for name, (dims, units, _) in schema.VARIABLES.items():
        if name in ds:
            assert ds[name].dims == dims and ds[name].attrs["units"] == units, name
    for name, (units, _) in schema.METRICS.items():
        assert ds[name].dims == ("seed", "time") and ds[name].attrs["units"] == units, name
    for name, (units, _) in schema.CURVES.items():
        assert ds[f"train_{name}"].attrs["units"] == units, name
    for name, (_, long_name) in schema.COORDS.items():
        if name in ds.coords:
            assert ds[name].attrs["long_name"] == long_name, name
