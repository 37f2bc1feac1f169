"""Two training options against the walking policies' failings: restarts on their own walk
(``EnvConfig.reset_walked``: a walked restart is exactly the state the walk was in, lineages
walk on past one episode's length, seeds stay independent, the option is checked) and an effort
cost in the reward (``ExpConfig.effort``, against co-contraction)."""

import dataclasses

import numpy as np
import pytest

from emulator.learning.agents.ppo import PPOConfig
from emulator.learning.train import TrainConfig, Trainer, seed_keys
from emulator.learning.walked import POOL_SIZE, WalkedStarts, apply_walked
from emulator.motion.sources import load_demo
from emulator.simulation.env import EnvConfig, TrackingEnv

# the walking recipe's servo (muscle-length targets: the state includes what the PD law senses);
# episodes cut at 0.2 s so that many end within a few steps
SERVO = EnvConfig(termination_body="mean", termination_distance_m=0.15, control_dt=1 / 30,
                  action_space="muscle_length_residual", length_kp=20.0, length_lead=1, length_residual=0.2,
                  servo_rate="physics", future_frames=(1, 5), max_episode_s=0.2)  # fmt: skip


def test_walked_restarts_start_exactly_where_the_walk_was(myolegs):
    walk = load_demo("walk", myolegs)
    S, E = 2, 4
    env = TrackingEnv.create(myolegs, walk, SERVO, backend="cpu", n_envs=S * E)
    pool = WalkedStarts(1.0, 3, S, E, seed_keys([0, 1]))
    state, obs = env.reset(None, index=np.arange(S * E) * 3)
    action = np.full((S * E, env.action_dim), 0.5, dtype=np.float32)  # the servo's own targets
    restarts, seen = 0, []  # every state the walk was in: (physics, observation, frame, sensed) rows
    for _ in range(40):
        offer = pool.offer()
        tr = env.step_autoreset(state, action, np.zeros(S * E, dtype=np.int32))
        done = np.asarray(tr.terminated | tr.truncated)
        obs, index, sensed = apply_walked(offer, done, tr.obs, tr.state.index, tr.state.sensed)
        phys, restarted = pool.after_step(tr.state.physics, done, obs, index, sensed)
        now = [np.asarray(x) for x in (phys, obs, index, sensed)]
        if restarted is not None:
            restarts += restarted.sum()
            for env_i in np.flatnonzero(restarted):
                # a state some environment walked through, with the observation, frame and
                # servo inputs it had then (bit for bit, not recomputed)
                match = [r for r in seen if np.array_equal(r[0], now[0][env_i])]
                assert match, "a walked restart's physics state was never walked"
                for got, want in zip([x[env_i] for x in now[1:]], match[0][1:], strict=True):
                    np.testing.assert_array_equal(got, want)
        seen += [tuple(x[i] for x in now) for i in np.flatnonzero(~done)]
        state = tr.state._replace(physics=phys, index=index, sensed=sensed)
    assert restarts > 10  # every episode ends after 6 steps and every one restarts on the walk
    filled = pool.filled
    assert (filled > 0).all() and (filled <= POOL_SIZE).all()
    walked_s = pool.pool["walked"] * env.control_dt
    assert walked_s.max() > 0.3  # lineages walk on past one episode (0.2 s)
    assert (walked_s[pool.pool["walked"] > 0] >= 3 * env.control_dt - 1e-9).all()


def test_reset_walked_trains_independent_seeds_and_is_checked():
    """On the elbow (cheap to compile): a seed trained in a block with walked restarts is the
    same seed trained alone, and the restarts change what it learns from."""
    env_cfg = EnvConfig(max_episode_s=0.1)  # episodes of 10 control steps

    def run(share, seeds):
        env = dataclasses.replace(env_cfg, reset_walked=share, reset_walked_after_s=0.05)
        cfg = TrainConfig(
            env=env, n_envs=4, total_steps=4 * 32 * 2, ppo=PPOConfig(hidden=(16,), rollout_steps=32)
        )
        return Trainer(cfg).train(seed_keys(seeds)).curves

    block, alone, plain = run(1.0, [3, 4]), run(1.0, [4]), run(0.0, [4])
    for name in ("joint_angle_error_deg", "episode_length_s", "reward"):
        np.testing.assert_allclose(block[name][1], alone[name][0], rtol=1e-5)
    assert not np.allclose(alone["reward"][0], plain["reward"][0], rtol=1e-4)
    with pytest.raises(ValueError, match=r"reset_walked must be within \[0, 1\].*got 1.5"):
        EnvConfig(reset_walked=1.5)
    with pytest.raises(ValueError, match="reset_walked and start_focus cannot be combined"):
        EnvConfig(reset_walked=0.5, start_focus=0.5)


def test_effort_cost_enters_the_learners_reward():
    """``ExpConfig.effort``: the first iteration of the same seed (the same actions: nothing
    has been learned yet) scores its mean squared activation times the effort lower; started
    co-contracting (excitation 0.5) that is a large share of the reward."""
    from emulator.learning.rewards import ExpConfig

    def first_reward(effort):
        cfg = TrainConfig(n_envs=4, total_steps=4 * 32, exp=ExpConfig(effort=effort),
                          ppo=PPOConfig(hidden=(16,), rollout_steps=32, init_excitation=0.5))  # fmt: skip
        return float(Trainer(cfg).train(seed_keys([0])).curves["reward"][0, 0])

    plain, economic = first_reward(0.0), first_reward(1.0)
    assert 0.1 < plain - economic < 1.0  # mean activation^2 of a policy near 0.5
    with pytest.raises(ValueError, match="exp effort needs reward 'exp' and algo 'ppo'"):
        TrainConfig(algo="qflex", exp=ExpConfig(effort=0.1))


@pytest.mark.slow
def test_effort_cost_lowers_the_activations_a_policy_learns():
    """Started co-contracting, the same elbow seed learns lower activations with the effort
    cost than without it, and still tracks."""
    from emulator.learning.rewards import ExpConfig
    from emulator.learning.rollout import rollout

    def run(effort):
        cfg = TrainConfig(n_envs=16, total_steps=16 * 32 * 40, exp=ExpConfig(effort=effort),
                          ppo=PPOConfig(hidden=(32, 32), init_excitation=0.5))  # fmt: skip
        trainer = Trainer(cfg)
        ro = rollout(trainer, trainer.train(seed_keys([0])).agent, 1.0)
        return float(np.mean(ro.data["activation"])), float(np.mean(ro.data["metrics"][..., 0]))

    (plain, plain_err), (economic, err) = run(0.0), run(1.0)
    assert economic < 0.8 * plain
    assert err < 2 * plain_err + 2.0  # deg: economy does not cost the tracking
