"""benchmarks/walking.py's steps-to-error table, on hand-made curves (the numbers the walking docs
quote come from it)."""

import csv
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def walking():
    spec = importlib.util.spec_from_file_location("walking_bench", ROOT / "benchmarks" / "walking.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _curves(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(
            f, fieldnames=["variant", "seed", "env_steps", "wall_time_s", "joint_angle_error_deg"]
        )
        w.writeheader()
        w.writerows(rows)


def test_steps_to_reads_the_smoothed_error_per_curve(walking, tmp_path):
    errors = [9.0, 7.0, 5.0, 4.0, 4.0]  # 2-iteration means: 9, 8, 6, 4.5, 4
    rows = [
        {"variant": "fast", "seed": 0, "env_steps": 1000 * (k + 1), "wall_time_s": 10.0 * (k + 1), "joint_angle_error_deg": e}
        for k, e in enumerate(errors)
    ] + [  # a curve that never gets under 6 deg
        {"variant": "slow", "seed": 3, "env_steps": 1000 * (k + 1), "wall_time_s": 5.0 * (k + 1), "joint_angle_error_deg": 7.0}
        for k in range(3)
    ]  # fmt: skip
    _curves(tmp_path / "c.csv", rows)
    out = walking.steps_to([8.5, 5.0], [tmp_path / "c.csv"], tmp_path / "st.csv", window=2)
    fast, slow = out
    assert (fast["name"], fast["seed"], fast["env_steps"]) == ("fast", 0, 5000)
    assert fast["best_joint_error_deg"] == 4.0
    assert (fast["steps_to_8.5_deg"], fast["wall_s_to_8.5_deg"]) == (2000, 20.0)  # mean(9, 7) = 8
    assert fast["steps_to_5_deg"] == 4000  # mean(5, 4) = 4.5
    assert (slow["name"], slow["seed"]) == ("slow", 3)
    assert slow["steps_to_8.5_deg"] == 1000 and slow["steps_to_5_deg"] == ""
    reread = list(csv.DictReader(open(tmp_path / "st.csv")))
    assert [r["steps_to_5_deg"] for r in reread] == ["4000", ""]


@pytest.mark.parametrize(
    "recipe", sorted((ROOT / "benchmarks" / "recipes").glob("*.toml")), ids=lambda p: p.stem
)
def test_every_recipe_states_what_it_trains_with(recipe, monkeypatch):
    """A recipe resolves to the same training config with and without the model's defaults
    (``diversity.config.MODEL_DEFAULTS``), so changing the default recipe changes no recipe
    file's meaning; the myolegs default is the quiet recipe itself."""
    import diversity.config as config

    cfg, _ = config.load_config(recipe)

    def used(run):  # the tables of the run's own learner and reward (the others never act)
        d = run.train_config().to_dict()
        unused = {"ppo", "qflex", "add", "exp"} - {run.algo, run.reward}
        return {k: v for k, v in d.items() if k not in unused}

    resolved = used(cfg)
    monkeypatch.setattr(config, "MODEL_DEFAULTS", {})
    assert used(cfg) == resolved
    monkeypatch.undo()
    if recipe.stem == "myolegs_walk_servo30_quiet":
        assert used(config.RunConfig(model="myolegs", motion="walk", steps=cfg.steps)) == resolved


def test_the_basin_benchmark_shoves_left_and_forward_of_the_walk(myolegs):
    """benchmarks/walking_basin.py's directions on the measured walk: "forward" is where the
    reference travels over a cycle and "lateral" (+) the walker's left, the side its left foot
    is on."""
    import types

    import mujoco
    import numpy as np

    from emulator.motion.sources import load_demo

    spec = importlib.util.spec_from_file_location("walking_basin", ROOT / "benchmarks" / "walking_basin.py")
    basin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(basin)
    walk = load_demo("walk", myolegs)
    trainer = types.SimpleNamespace(
        model=myolegs, motion=walk, control_dt=1 / 30, config=types.SimpleNamespace(motion="walk")
    )
    d = basin.walk_directions(trainer)
    forward, left = d["forward"], d["lateral"]
    assert np.linalg.norm(forward) == pytest.approx(1.0) and abs(forward @ left) < 1e-12
    assert forward[0] * left[1] - forward[1] * left[0] > 0  # left of forward, seen from above
    m, data = myolegs.mj_model, mujoco.MjData(myolegs.mj_model)
    data.qpos[:] = walk.qpos[0]
    mujoco.mj_kinematics(m, data)
    feet = data.xpos[m.body("calcn_l").id, :2] - data.xpos[m.body("calcn_r").id, :2]
    assert feet @ left > 0.03  # the left heel 3 cm or more to the walker's left of the right


def test_the_effort_benchmark_reads_each_seeds_activation_and_force(store):
    """benchmarks/walking_effort.py on the tiny elbow store: per seed the rollout's mean and
    median activation, the muscles above half, the summed force in N and body weights."""
    import numpy as np
    import xarray as xr

    from emulator.models import load_model

    spec = importlib.util.spec_from_file_location("walking_effort", ROOT / "benchmarks" / "walking_effort.py")
    effort = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(effort)
    rows = effort.effort_rows(str(store), seeds=[1, 3])
    ds = xr.open_zarr(store).sel(seed=[1, 3]).load()
    weight = load_model("elbow").mj_model.body_subtreemass[0] * 9.81
    assert [r["seed"] for r in rows] == [1, 3] and all(r["effort"] == 0.0 for r in rows)
    for r, seed in zip(rows, [1, 3], strict=True):
        act = ds["activation"].sel(seed=seed).values
        assert r["mean_activation"] == pytest.approx(act.mean(), abs=1e-4)
        assert r["muscles_over_half"] == int((act.mean(axis=0) > 0.5).sum())
        force = np.abs(ds["muscle_force"].sel(seed=seed).values).sum(-1).mean()
        assert r["muscle_force_sum_n"] == pytest.approx(force, abs=0.1)
        assert r["muscle_force_sum_bw"] == pytest.approx(force / weight, abs=0.01)
        assert r["stayed_up"] is True  # the elbow's welded base never falls
