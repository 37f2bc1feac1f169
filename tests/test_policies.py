"""Kept policies: every `diversity run` seed's policy is stored with the store, and
`diversity rollout` replays a policy set into a new store of the same schema, no training."""

import json

import jax
import numpy as np
import pytest
import xarray as xr
from flax import serialization
from typer.testing import CliRunner

from diversity.cli import app
from diversity.store import validate_store
from emulator.learning.policies import PolicyError, find_policy_set, load_policy_set, save_policy

runner = CliRunner()


def test_run_keeps_every_seed_policy_and_rollout_replays_it(store, tmp_path):
    files = sorted((store / "policies").glob("seed_*.msgpack"))
    assert [f.name for f in files] == [f"seed_{s:04d}.msgpack" for s in range(4)]
    assert validate_store(store) == []  # the policies directory does not disturb the store
    pset, trainer = load_policy_set(find_policy_set(store))
    assert pset.seeds == [0, 1, 2, 3] and trainer.config.model == "elbow"
    assert pset.curves["env_steps"].shape[0] == 4 and pset.meta[0]["env_steps"] > 0

    out = tmp_path / "again.zarr"
    res = runner.invoke(app, ["rollout", str(store), "--out", str(out), "--cycles", "0.5", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["completed_seeds"] == [0, 1, 2, 3]
    assert json.loads(res.stdout)["upright"] is None  # the elbow has no root to fall with
    a, b = xr.open_zarr(store), xr.open_zarr(out)
    assert set(a.data_vars) == set(b.data_vars) and dict(a.sizes) == dict(b.sizes)
    # the same deterministic policies from the same start: the same activations and angles
    np.testing.assert_allclose(b["activation"].values, a["activation"].values, atol=1e-5)
    np.testing.assert_allclose(b["joint_angle"].values, a["joint_angle"].values, atol=1e-5)
    np.testing.assert_array_equal(b["train_env_steps"].values, a["train_env_steps"].values)
    assert validate_store(out) == [] and len(list((out / "policies").glob("*.msgpack"))) == 4


def test_policy_errors_name_the_file(store, tmp_path):
    res = runner.invoke(app, ["rollout", str(tmp_path / "nothing"), "--out", str(tmp_path / "o.zarr")])
    assert res.exit_code == 2 and "no such store, policy directory or shipped policy set" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "o.zarr").exists()

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "seed_0000.msgpack").write_bytes(b"\x93not a policy")
    with pytest.raises(PolicyError, match="seed_0000.msgpack: not a policy file"):
        load_policy_set(bad)
    res = runner.invoke(app, ["rollout", str(bad), "--out", str(tmp_path / "o.zarr")])
    assert res.exit_code == 2 and "seed_0000.msgpack" in res.output and not (tmp_path / "o.zarr").exists()

    # a policy whose learner state does not fit its configuration
    good, trainer = load_policy_set(find_policy_set(store))
    import dataclasses

    other = dataclasses.replace(trainer.config, ppo=dataclasses.replace(trainer.config.ppo, hidden=(8,)))
    import jax

    save_policy(bad, 0, jax.tree_util.tree_map(lambda x: x[0], good.agent), other)
    with pytest.raises(PolicyError, match="does not fit"):
        load_policy_set(bad)

    # seeds of one run resumed across an update: a file written before an option existed (its
    # config lacks it) is the same training as one written after, at that option's default
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for s in (0, 1):
        save_policy(mixed, s, jax.tree_util.tree_map(lambda x, s=s: x[s], good.agent), trainer.config)
    path = mixed / "seed_0000.msgpack"
    payload = serialization.msgpack_restore(path.read_bytes())
    older = json.loads(payload["config"])
    del older["env"]["start_focus"], older["exp"]["weights"]["root_xcom"]
    path.write_bytes(serialization.msgpack_serialize({**payload, "config": json.dumps(older)}))
    assert load_policy_set(mixed)[0].seeds == [0, 1]
    # a real difference is named
    gamma = dataclasses.replace(trainer.config, ppo=dataclasses.replace(trainer.config.ppo, gamma=0.9))
    save_policy(mixed, 1, jax.tree_util.tree_map(lambda x: x[1], good.agent), gamma)
    with pytest.raises(PolicyError, match=r"seed_0000.msgpack and seed_0001.msgpack differ in ppo.gamma"):
        load_policy_set(mixed)


def test_policies_command_lists_shipped_sets():
    res = runner.invoke(app, ["policies", "--json"])
    assert res.exit_code == 0, res.output
    for row in json.loads(res.output):
        assert row["n_seeds"] >= 1 and row["model"] and row["motion"]


def test_ship_writes_a_lean_set_with_a_manifest(store, tmp_path):
    """`diversity ship STORE --name N --out DIR`: lean policy files (no optimiser state, much
    smaller) holding exactly what a rollout reads, and a manifest with the recipe and per-seed
    results."""
    res = runner.invoke(app, ["ship", str(store), "--name", "tiny-elbow", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    dest = tmp_path / "tiny-elbow"
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["seeds"] == [0, 1, 2, 3] and manifest["model"] == "elbow"
    assert manifest["run_config"]["seeds"] == [0, 1, 2, 3] and manifest["package_version"]
    ds = xr.open_zarr(store)
    for row in manifest["per_seed"]:
        seed = row["seed"]
        err = float(ds["joint_angle_error"].sel(seed=seed).mean("time"))
        assert row["joint_angle_error_deg"] == pytest.approx(err, abs=1e-3)
        term = ds["terminated"].sel(seed=seed).values.astype(bool)  # while up: before the first
        upto = int(term.argmax()) if term.any() else len(term)
        up_err = float(ds["joint_angle_error"].sel(seed=seed).values[: max(upto, 1)].mean())
        assert row["joint_angle_error_upright_deg"] == pytest.approx(up_err, abs=1e-3)
        assert row["env_steps"] == int(ds["train_env_steps"].sel(seed=seed).max())
        assert row["fell"] is False  # the elbow has a welded base: nothing to fall
    for f in sorted((store / "policies").glob("seed_*.msgpack")):
        assert (dest / f.name).stat().st_size < 0.6 * f.stat().st_size  # optimiser state left out
    # what a rollout reads (actor, log std, observation statistics) is the run's, bit for bit
    # (a rollout of a policy set reproducing its store is the test above)
    shipped, trainer = load_policy_set(find_policy_set(dest))
    original, _ = load_policy_set(find_policy_set(store), trainer)
    for field in ("actor", "log_std", "obs_norm"):
        for a, b in zip(
            jax.tree_util.tree_leaves(getattr(shipped.agent, field)),
            jax.tree_util.tree_leaves(getattr(original.agent, field)),
            strict=True,
        ):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # shipping into a set that exists is refused, by name
    res = runner.invoke(app, ["ship", str(store), "--name", "tiny-elbow", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "tiny-elbow" in res.output and "not empty" in res.output


def _actor_distance(a, b) -> float:
    return float(
        sum(
            np.abs(np.asarray(x) - np.asarray(y)).sum()
            for x, y in zip(
                jax.tree_util.tree_leaves(a.actor), jax.tree_util.tree_leaves(b.actor), strict=True
            )
        )
    )


def test_run_continues_a_policy_set(store, tmp_path):
    """`diversity run --init-from SET`: each seed carries on from the set's policy of the same id
    (its networks, not a fresh init), its curves count env steps and wall time on from the
    set's, the store records where it started, and a set trained otherwise is refused by name."""
    from diversity.config import ConfigError
    from diversity.pipeline import run
    from diversity.progress import Progress
    from diversity.shipping import ship_policy_set
    from tests.conftest import TINY_RUN

    out = tmp_path / "continued.zarr"
    # the same training settings as the set (steps too): the run reuses its compiled programs
    cfg = TINY_RUN.replace(seeds=(1, 3), init_from=str(store), checkpoint_every=0)

    class Counted(Progress):
        def start(self, **kw):
            self.total, self.done = kw["total_steps"], 0

        def update(self, *, steps, **kw):
            self.done += steps

    progress = Counted()
    report = run(cfg, out, progress=progress)
    assert report.completed == [1, 3]
    assert progress.done == progress.total == 2 * 3 * 128  # the added steps, not the set's too
    before, trainer = load_policy_set(find_policy_set(store))
    after, _ = load_policy_set(find_policy_set(out), trainer)
    for j, seed in enumerate(after.seeds):
        i = before.seeds.index(seed)
        moved = _actor_distance(jax_row(after.agent, j), jax_row(before.agent, i))
        fresh = _actor_distance(jax_row(before.agent, i), jax_row(before.agent, (i + 1) % 4))
        assert 0 < moved < 0.2 * fresh  # one more update away from its own policy, not a new one
        prior_steps = before.curves["env_steps"][i, -1]
        assert after.curves["env_steps"][j, 0] == prior_steps + 4 * 32
        assert after.curves["wall_time_s"][j, 0] > before.curves["wall_time_s"][i, -1]
    record = json.loads(xr.open_zarr(out).attrs["init_from"])
    assert record["source"] == str(store / "policies") and record["seeds"] == [0, 1, 2, 3]
    assert record["name"] == store.stem  # what a reader on another machine can find it by
    # shipped, the continued set's manifest tells both stages: from scratch, then this run
    stages = json.loads((ship_policy_set(out, "continued", tmp_path / "sets") / "manifest.json").read_text())[
        "lineage"
    ]
    assert [s["stage"] for s in stages] == [store.stem, out.stem]
    assert stages[0]["init_from"] is None and stages[1]["init_from"] == store.stem
    assert stages[0]["env_steps"] == before.curves["env_steps"][0, -1]
    assert stages[1]["env_steps"] == stages[0]["env_steps"] + 3 * 128 and stages[1]["changed"] == []

    # the learner's schedule and the reward's kernels may change on the way (a longer horizon,
    # another step size, a tighter root kernel); what shapes the networks may not
    from diversity.pipeline import _check_start_set

    schedule = {
        "ppo": {"hidden": [32, 32], "gamma": 0.99, "learning_rate": 1e-4},
        "exp": {"sigmas": {"root_rotation": 0.15}},
        # the learner's curricula, not what the rollouts see: the training episodes' end, pushes,
        # where they start
        "env": {
            "train_termination_distance_m": 0.3,
            "train_termination_xcom_m": 0.1,
            "push_speed_mps": 0.2,
            "push_interval_s": 1.0,
            "start_focus": 0.5,
            "root_assist_hz": 1.0,
        },
    }
    assert _check_start_set(cfg.replace(train=schedule)) == store / "policies"
    judged = {"ppo": {"hidden": [32, 32]}, "env": {"termination_distance_m": 0.5}}
    with pytest.raises(ConfigError, match=r"env\.termination_distance_m"):
        _check_start_set(cfg.replace(train=judged))
    # refused before anything is written: other settings (named), seeds the set lacks
    other = cfg.replace(train={"ppo": {"hidden": [16, 16]}})
    with pytest.raises(ConfigError, match=r"init_from: .*ppo\.hidden"):
        run(other, tmp_path / "other.zarr")
    assert not (tmp_path / "other.zarr").exists()
    recipe = tmp_path / "continue.toml"
    recipe.write_text(
        f'init_from = "{store}"\nseed_list = "2,7"\nsteps = 128\nn_envs = 4\n[ppo]\nhidden = [32, 32]\n'
    )
    res = runner.invoke(app, ["run", "--config", str(recipe), "--out", str(tmp_path / "missing.zarr")])
    assert res.exit_code == 2 and "no policies for seeds [7]" in res.output
    assert not (tmp_path / "missing.zarr").exists()


def jax_row(tree, i):
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[i], tree)


def test_policies_remember_their_motion_and_a_rollout_on_a_changed_one_warns(store, monkeypatch):
    """Each policy file records the content hash of the motion it trained on; rolling a set out
    after that motion was rebuilt (same name, other frames) says so instead of passing silently."""
    import warnings

    from diversity.rollouts import _warn_if_motion_changed
    from emulator.motion.reference import ReferenceMotion

    source = find_policy_set(store)
    pset, trainer = load_policy_set(source)
    assert {m["motion_hash"] for m in pset.meta} == {xr.open_zarr(store).attrs["motion_hash"]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_motion_changed(source, pset, trainer)  # unchanged: silent
    monkeypatch.setattr(ReferenceMotion, "content_hash", property(lambda self: "0" * 16))
    with pytest.warns(
        UserWarning, match=r"trained on motion 'elbow_flexion'.*0000000000000000 \(changed since\)"
    ):
        _warn_if_motion_changed(source, pset, trainer)
