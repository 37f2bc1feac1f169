"""Multi-seed training: independent, reproducible seeds; short elbow runs that learn; rollouts
with named series; checkpoints that resume."""

import json

import jax
import numpy as np
import pytest
from flax import serialization

from emulator.learning.agents.ppo import PPOConfig
from emulator.learning.agents.qflex import QflexConfig
from emulator.learning.rollout import rollout
from emulator.learning.train import TrainConfig, Trainer, load_checkpoint, save_checkpoint, seed_keys
from emulator.simulation.env import EnvConfig

TINY = dict(n_envs=4, ppo=PPOConfig(hidden=(32, 32)), qflex=QflexConfig(hidden=(32, 32), learning_starts=32,
            batch_size=32, steps_per_update=8))  # fmt: skip


def _leaves(tree, i):
    return [np.asarray(x)[i] for x in jax.tree_util.tree_leaves(tree)]


@pytest.mark.parametrize("algo", ["ppo", pytest.param("qflex", marks=pytest.mark.slow)])
def test_seeds_are_independent_and_reproducible(algo):
    steps = 4 * 32 * 2 if algo == "ppo" else 4 * 8 * 4
    trainer = Trainer(TrainConfig(algo=algo, reward="add", total_steps=steps, **TINY))
    batch = trainer.train(seed_keys([0, 1, 2]))
    # seed 1 again, first in a batch of other seeds (the same compiled program: no recompile)
    other = trainer.train(seed_keys([1, 5, 6]))
    a, b, c = (_leaves(batch.agent, i) for i in range(3))
    one = _leaves(other.agent, 0)
    # three different policies ...
    assert max(np.abs(x - y).max() for x, y in zip(a, b, strict=True)) > 1e-2
    assert max(np.abs(x - y).max() for x, y in zip(b, c, strict=True)) > 1e-2
    # ... and seed 1 does not depend on its neighbours or its place in the batch (float32
    # batched matmuls may differ in the last bits, nothing more)
    assert max(np.abs(x - y).max() for x, y in zip(b, one, strict=True)) < 1e-4
    np.testing.assert_allclose(batch.curves["reward"][1], other.curves["reward"][0], rtol=1e-4, atol=1e-5)
    assert batch.curves["env_steps"].shape == (3, batch.curves["reward"].shape[1])


def test_rollout_named_series_checkpoint_resume_and_bitwise_reproducible_seeds(tmp_path):
    cfg = TrainConfig(algo="ppo", reward="exp", total_steps=4 * 32 * 2, **TINY)
    trainer = Trainer(cfg)  # one compile; every train() starts from the keys, nothing carries over
    res = trainer.train(seed_keys([3, 4]))
    path = save_checkpoint(tmp_path / "block.msgpack", 2, res, cfg)
    it, back = load_checkpoint(path, res, cfg)
    assert it == 2
    for x, y in zip(jax.tree_util.tree_leaves(res.agent), jax.tree_util.tree_leaves(back.agent), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    other = TrainConfig(algo="ppo", reward="add", total_steps=4 * 32 * 2, **TINY)
    assert load_checkpoint(path, res, other) is None  # a different config never resumes
    # written by code that predates an option: resumes while the option is at its default
    payload = serialization.msgpack_restore(path.read_bytes())
    older = json.loads(payload["config"])
    del older["env"]["start_focus"]
    payload["config"] = json.dumps(older, sort_keys=True)
    path.write_bytes(serialization.msgpack_serialize(payload))
    assert load_checkpoint(path, res, cfg)[0] == 2
    focused = TrainConfig(
        algo="ppo", reward="exp", total_steps=4 * 32 * 2, env=EnvConfig(start_focus=0.5), **TINY
    )
    assert load_checkpoint(path, res, focused) is None
    more = Trainer(TrainConfig(algo="ppo", reward="exp", total_steps=4 * 32 * 3, **TINY)).train(
        seed_keys([3, 4]), resume=(it, back)
    )
    assert more.curves["reward"].shape == (2, 3)  # two iterations restored, one more trained
    # the resumed iteration counts env steps and training wall time on from the checkpoint's
    assert list(more.curves["env_steps"][0]) == [128, 256, 384]
    assert np.all(np.diff(more.curves["wall_time_s"], axis=1) > 0)

    ro = rollout(trainer, res.agent, n_cycles=0.5)
    n = trainer.reference_frames // 2
    assert ro.data["activation"].shape == (2, n, 6) and ro.dims["activation"] == ("seed", "time", "muscle")
    assert ro.data["joint_angle"].shape == (2, n, 2) and ro.coords["joint"] == [
        "r_shoulder_elev",
        "r_elbow_flex",
    ]
    assert ro.data["reference_joint_angle"].shape == (n, 2) and "grf" not in ro.data  # no feet
    assert np.all((ro.data["excitation"] >= 0) & (ro.data["excitation"] <= 1))
    # deterministic: the same policies give the same series
    ro2 = rollout(trainer, res.agent, n_cycles=0.5)
    np.testing.assert_array_equal(ro.data["joint_angle"], ro2.data["joint_angle"])
    # on the cpu backend a seed is reproducible bit for bit: the same seeds trained again give
    # identical activations
    again = rollout(trainer, trainer.train(seed_keys([3, 4])).agent, n_cycles=0.5)
    np.testing.assert_array_equal(again.data["activation"], ro.data["activation"])


# Qflex learns with a smaller critic batch and networks here (128, 64x64: a few times cheaper per
# gradient step than the defaults' 256, 128x128): 20.4 -> 8.2 deg at 15k steps, as the defaults.
LEARNERS = {"ppo": {}, "qflex": {"qflex": QflexConfig(batch_size=128, hidden=(64, 64))}}


# qflex's run is ~2.5 min of the default suite's 10: slow (run with -m slow); ppo's stays
@pytest.mark.parametrize(
    "algo,steps", [("ppo", 100_000), pytest.param("qflex", 15_000, marks=pytest.mark.slow)]
)
def test_short_elbow_run_halves_the_tracking_error(algo, steps):
    """A short run (1-2 minutes on 2 cores): the deterministic rollout's mean joint-angle error
    over one flexion cycle falls to at most half the untrained policy's."""
    cfg = TrainConfig(algo=algo, reward="add", total_steps=steps, **LEARNERS[algo])
    trainer = Trainer(cfg)
    keys = seed_keys([0])
    untrained = trainer.init_state(keys).agent  # the same initial networks
    before = rollout(trainer, untrained, 1.0).data["metrics"][..., 0].mean()
    res = trainer.train(keys)
    after = rollout(trainer, res.agent, 1.0).data["metrics"][..., 0].mean()
    print(f"elbow {algo}: mean joint-angle error {before:.2f} -> {after:.2f} deg")
    assert after <= 0.5 * before


def test_learners_and_rewards_come_from_registries():
    """The trainer picks learner and reward by name from one table each and takes its sizes from
    the env (a previous-action observation widens it); unknown names are refused by name."""
    import dataclasses

    from emulator.learning.agents import AGENTS, make_agent
    from emulator.learning.rewards import REWARDS, make_reward
    from emulator.simulation.env import EnvConfig, TrackingEnv
    from emulator.simulation.physics import make_physics

    assert set(AGENTS) == {"ppo", "qflex"} and set(REWARDS) == {"exp", "add"}
    with pytest.raises(ValueError, match="unknown learner 'sac'"):
        make_agent("sac", None)
    with pytest.raises(ValueError, match="unknown reward 'l2'"):
        make_reward("l2", None, ())
    with pytest.raises(ValueError, match="algo must be one of"):
        TrainConfig(algo="sac")
    cfg = TrainConfig(total_steps=4 * 32, env=EnvConfig(observe_previous_action=True), **TINY)
    plain = Trainer(dataclasses.replace(cfg, env=EnvConfig()))
    wide = Trainer(cfg)
    assert wide.obs_dim == plain.obs_dim + wide.act_dim
    env = TrackingEnv(wide.model, wide.motion, make_physics(wide.model, "cpu", n_envs=1), cfg.env)
    assert Trainer(cfg, env=env).obs_dim == env.obs_dim
    with pytest.raises(ValueError, match="other settings"):
        Trainer(dataclasses.replace(cfg, env=EnvConfig()), env=env)
    from emulator.learning.train import CURVE_NAMES

    res = wide.train(seed_keys([0]))
    assert set(res.curves) == set(CURVE_NAMES) and res.curves["episode_length_s"].shape == (1, 1)


def test_pushes_and_the_root_assist_reach_the_learners_episodes(myolegs):
    """With ``push_speed_mps`` the training loop shoves its environments (hard, at every step,
    here), so their episodes end sooner than unpushed ones from the same keys; a seed's pushes
    come from its own key, whatever seeds share its block. With ``root_assist_hz`` it holds the
    root on the reference's path (the untrained servo's root stays closer to it); the assist
    fades over ``root_assist_anneal`` of the run."""
    import dataclasses

    from emulator.learning.train import assist_strength
    from emulator.motion.sources import load_demo
    from emulator.simulation.env import EnvConfig

    walk = load_demo("walk", myolegs)
    # the recipe's servo: untrained, it already tracks the walk and is lost by drifting off it
    quiet = EnvConfig(termination_body="mean", termination_distance_m=0.15, control_dt=1 / 30,
                      action_space="muscle_length_residual", length_kp=20.0, length_lead=1,
                      length_residual=0.2, servo_rate="physics")  # fmt: skip
    shoved = dataclasses.replace(quiet, push_speed_mps=2.0, push_interval_s=quiet.control_dt)
    held = dataclasses.replace(quiet, root_assist_hz=2.0, root_assist_anneal=1.0)
    kicked = dataclasses.replace(quiet, reset_kick_mps=1.5)  # at every episode's start only
    trainers, lengths, drift = [], [], []
    for env_cfg in (quiet, shoved, held, kicked):
        cfg = TrainConfig(model="myolegs", motion="walk", env=env_cfg, n_envs=8, total_steps=8 * 32,
                          ppo=PPOConfig(hidden=(16,), rollout_steps=32, init_excitation=0.5, init_log_std=-4.0))  # fmt: skip
        trainers.append(Trainer(cfg, model=myolegs, motion=walk))
        curves = trainers[-1].train(seed_keys([3])).curves
        lengths.append(float(curves["episode_length_s"][0, 0]))
        drift.append(float(curves["root_translation_error_cm"][0, 0]))
    assert lengths[1] < 0.75 * lengths[0]
    assert lengths[1] < lengths[3] < 0.9 * lengths[0]  # shoved once an episode: between the two
    assert drift[2] < 0.5 * drift[0]  # the root held near its path (measured: 1.4 against 5.5 cm)
    # full strength at the start, linearly to none at root_assist_anneal of the run's iterations
    half = dataclasses.replace(quiet, root_assist_hz=1.0, root_assist_anneal=0.5)
    assert [assist_strength(half, i, 10) for i in (0, 2, 5, 9)] == pytest.approx([1.0, 0.6, 0.0, 0.0])
    assert assist_strength(quiet, 0, 10) == 0.0
    k_reset = jax.random.split(jax.random.PRNGKey(0), 3)
    plain, pushing = (t._programs[1][0] for t in trainers[:2])  # the envs they trained in
    block = trainers[1]._pushes(pushing, k_reset, 3, 8)  # [T, 3*8, 2]
    alone = trainers[1]._pushes(pushing, k_reset[1:2], 1, 8)
    np.testing.assert_allclose(np.linalg.norm(block, axis=-1), 2.0, rtol=1e-5)  # every step pushes
    np.testing.assert_array_equal(block[:, 8:16], alone)
    assert trainers[0]._pushes(plain, k_reset, 3, 8) is None
    # reset kicks: uniform within the disc (mean size 2/3 of its radius), per seed's own key
    kicking = trainers[3]._programs[1][0]
    starts = trainers[3]._start_kicks(kicking, k_reset, 3, 8)
    size = np.linalg.norm(starts, axis=-1)
    assert size.max() <= 1.5 + 1e-6 and abs(size.mean() / 1.5 - 2 / 3) < 0.05
    np.testing.assert_array_equal(starts[:, 8:16], trainers[3]._start_kicks(kicking, k_reset[1:2], 1, 8))
    assert trainers[0]._start_kicks(plain, k_reset, 3, 8) is None


def test_start_focus_draws_training_starts_where_episodes_fail(myolegs):
    """``EnvConfig.start_focus``: on the walk an untrained policy falls from some phases sooner
    than from others, so after the first iteration the learner's start frames follow those
    failure rates (every frame keeps its uniform share); on the elbow nothing falls (episodes
    only reach the motion's end, which is no failure), so the starts stay uniform."""
    from emulator.motion.sources import load_demo
    from emulator.simulation.env import EnvConfig

    walk = load_demo("walk", myolegs)
    env_cfg = EnvConfig(
        termination_body="mean", termination_distance_m=0.15, control_dt=1 / 30, start_focus=0.8
    )
    cfg = TrainConfig(model="myolegs", motion="walk", env=env_cfg, n_envs=8, total_steps=8 * 32,
                      ppo=PPOConfig(hidden=(16,), rollout_steps=32))  # fmt: skip
    trainer = Trainer(cfg, model=myolegs, motion=walk)
    seen = []
    trainer.train(seed_keys([0, 1]), progress_fn=lambda info: seen.append(info["start_probs"]))
    probs = seen[-1]
    T = trainer.reference_frames
    assert probs.shape == (2, T)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert probs.min() >= 0.2 / T - 1e-6  # the uniform share
    assert probs.max() > 1.1 / T and probs.min() < 0.9 / T  # the focused share is not uniform
    assert not np.allclose(probs[0], probs[1])  # each seed its own statistics

    elbow_cfg = TrainConfig(total_steps=4 * 32, env=EnvConfig(start_focus=0.8), **TINY)
    seen.clear()
    elbow_trainer = Trainer(elbow_cfg)
    elbow_trainer.train(seed_keys([0]), progress_fn=lambda info: seen.append(info["start_probs"]))
    np.testing.assert_allclose(seen[-1], 1.0 / elbow_trainer.reference_frames, rtol=1e-5)


def test_the_physics_step_reaches_every_env_of_a_run():
    """``EnvConfig.physics_dt`` is honoured by the learner's environments, the size probe and
    the rollouts (each env refuses a backend built at another step, so a missed site fails)."""
    from emulator.learning.rollout import rollout_schema
    from emulator.simulation.env import EnvConfig

    cfg = TrainConfig(total_steps=4 * 32, env=EnvConfig(control_dt=0.01, physics_dt=0.005), **TINY)
    trainer = Trainer(cfg)
    env = trainer.make_env(1)
    assert env.physics.timestep == 0.005 and env.n_substeps == 2
    assert trainer.spec_env.physics.timestep == 0.005 and trainer.control_dt == pytest.approx(0.01)
    res = trainer.train(seed_keys([0]))
    schema = rollout_schema(trainer, n_cycles=0.25)
    ro = rollout(trainer, res.agent, n_cycles=0.25)
    angle = ro.data["joint_angle"]
    assert angle.shape[1] == schema.n_steps and np.isfinite(angle).all()
    assert ro.control_dt == schema.control_dt == pytest.approx(0.01)
