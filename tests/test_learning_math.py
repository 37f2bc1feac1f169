"""Loss functions and targets on hand-worked numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emulator.learning.agents.common import gaussian_log_prob
from emulator.learning.agents.ppo import PPOConfig, gae, ppo_loss
from emulator.learning.agents.qflex import flow_target, td_target
from emulator.learning.rewards import AddConfig, AddState, _Disc, add_loss, add_reward, exp_reward

jax.config.update("jax_enable_x64", False)


def test_gae_hand_worked():
    r = jnp.ones(3)
    v = jnp.full(3, 0.5)
    zeros = jnp.zeros(3)
    # delta_t = 1 + 0.9 * 0.5 - 0.5 = 0.95; A_t = delta_t + 0.9 * 0.5 * A_{t+1}
    adv, ret = gae(r, v, v, zeros, zeros, gamma=0.9, lam=0.5)
    np.testing.assert_allclose(adv, [1.569875, 1.3775, 0.95], rtol=1e-6)
    np.testing.assert_allclose(ret, np.asarray(adv) + 0.5, rtol=1e-6)
    # termination at t=1: no bootstrap (delta_1 = 0.5) and no carry into t=0 from t=2
    adv, _ = gae(r, v, v, jnp.array([0.0, 1.0, 0.0]), zeros, gamma=0.9, lam=0.5)
    np.testing.assert_allclose(adv, [0.95 + 0.45 * 0.5, 0.5, 0.95], rtol=1e-6)
    # truncation at t=1: that step has zero advantage and blocks the recursion
    adv, _ = gae(r, v, v, zeros, jnp.array([0.0, 1.0, 0.0]), gamma=0.9, lam=0.5)
    np.testing.assert_allclose(adv, [0.95, 0.0, 0.95], rtol=1e-6)


def _ppo_batch(ratios, advantages, value, ret, old_value):
    mean, log_std = jnp.zeros((2, 1)), jnp.zeros(1)
    u = jnp.array([[0.3], [-0.2]])
    logp = gaussian_log_prob(u, mean, log_std)
    batch = {
        "obs": jnp.zeros((2, 1)),
        "u": u,
        "log_prob": logp - jnp.log(jnp.asarray(ratios)),  # old log-probs giving these ratios
        "value": jnp.asarray(old_value),
        "advantage": jnp.asarray(advantages),
        "return": jnp.asarray(ret),
    }
    params = {"actor": {"m": mean}, "critic": {"v": jnp.asarray(value)}, "log_std": log_std}
    return params, batch


def test_clipped_objective_and_value_clip():
    apply_actor = lambda p, obs: p["m"]  # noqa: E731
    apply_critic = lambda p, obs: p["v"]  # noqa: E731
    params, batch = _ppo_batch([1.5, 0.5], [1.0, -1.0], [2.0, 2.0], [3.0, 3.0], [2.5, 2.5])
    cfg = PPOConfig(clip=0.2, value_coef=1.0, entropy_coef=0.0)
    loss, info = ppo_loss(params, batch, cfg, apply_actor, apply_critic)
    # ratio 1.5 with A=+1 clips to 1.2; ratio 0.5 with A=-1: min(-0.5, -0.8) = -0.8
    assert float(info["policy_loss"]) == pytest.approx(-(1.2 - 0.8) / 2, rel=1e-5)
    assert float(info["value_loss"]) == pytest.approx(0.5 * 1.0, rel=1e-6)  # (2 - 3)^2 / 2
    assert float(info["clip_fraction"]) == pytest.approx(1.0)
    assert float(loss) == pytest.approx(-0.2 + 0.5, rel=1e-5)
    # value clipping around the old value 2.5 (+-0.2 -> 2.3): max((2-3)^2, (2.3-3)^2) = 1
    _, info = ppo_loss(params, batch, PPOConfig(value_clip=0.2), apply_actor, apply_critic)
    assert float(info["value_loss"]) == pytest.approx(0.5, rel=1e-6)
    params, batch = _ppo_batch([1.0, 1.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [1.9, 1.9])
    _, info = ppo_loss(params, batch, PPOConfig(value_clip=0.2), apply_actor, apply_critic)
    assert float(info["value_loss"]) == pytest.approx(0.5 * 1.0, rel=1e-6)  # max(1, (2.1-3)^2=0.81)


def test_log_std_bound_sets_the_sampling_noise_and_the_entropy():
    """With ``log_std_max`` the policy samples, scores and counts entropy with the bounded log
    std; the learned parameter below the bound is used as it is."""
    from emulator.learning.agents.ppo import ppo_act, ppo_init, ppo_mean_action

    cfg = PPOConfig(hidden=(8,), init_log_std=-1.0, init_excitation=0.5, log_std_max=-2.0)
    state = ppo_init(jax.random.PRNGKey(0), 3, 4, cfg)
    obs = jnp.zeros((20_000, 3))
    u, _, logp, _ = ppo_act(state, obs, jax.random.PRNGKey(1), cfg)
    mean = jax.scipy.special.logit(ppo_mean_action(state, obs[:1], cfg))[0]  # every row's mean
    assert float(jnp.std(u - mean)) == pytest.approx(np.exp(-2.0), rel=0.02)
    np.testing.assert_allclose(logp[:5], gaussian_log_prob(u[:5], mean, jnp.full(4, -2.0)), atol=1e-3)
    free = PPOConfig(hidden=(8,), init_log_std=-1.0, init_excitation=0.5)
    u_free, *_ = ppo_act(state, obs, jax.random.PRNGKey(1), free)
    assert float(jnp.std(u_free - u_free.mean(axis=0))) == pytest.approx(np.exp(-1.0), rel=0.02)
    # entropy of 4 Gaussians with log std -2: 4 (-2 + 0.5 log(2 pi e))
    params = {"actor": {"m": jnp.zeros((1, 4))}, "critic": {"v": jnp.zeros(1)}, "log_std": jnp.full(4, -1.0)}
    batch = {k: jnp.zeros(1) for k in ("log_prob", "value", "advantage", "return")}
    batch |= {"obs": jnp.zeros((1, 1)), "u": jnp.zeros((1, 4))}
    _, info = ppo_loss(params, batch, cfg, lambda p, o: p["m"], lambda p, o: p["v"])
    assert float(info["entropy"]) == pytest.approx(4 * (-2.0 + 0.5 * np.log(2 * np.pi * np.e)), rel=1e-6)
    params["log_std"] = jnp.full(4, -3.0)  # below the bound: the learned one
    _, info = ppo_loss(params, batch, cfg, lambda p, o: p["m"], lambda p, o: p["v"])
    assert float(info["entropy"]) == pytest.approx(4 * (-3.0 + 0.5 * np.log(2 * np.pi * np.e)), rel=1e-6)


def test_td_target_and_flow_target():
    y = td_target(jnp.array([1.0, 1.0]), jnp.array([0.0, 1.0]), jnp.array([2.0, 2.0]), jnp.array([3.0, 3.0]),
                  jnp.array([-1.0, -1.0]), gamma=0.9, alpha=0.1)  # fmt: skip
    np.testing.assert_allclose(y, [1 + 0.9 * (2.0 + 0.1), 1.0], rtol=1e-6)
    np.testing.assert_allclose(
        flow_target(jnp.array([[3.0, 4.0], [0.0, -2.0]]), 0.1), [[0.06, 0.08], [0.0, -0.1]], rtol=1e-5
    )


def test_discriminator_loss_gradient_penalty_and_reward():
    disc = _Disc(())  # linear: D(x) = w.x + b
    params = {"params": {"Dense_0": {"kernel": jnp.array([[1.0], [2.0]]), "bias": jnp.array([0.5])}}}
    delta_hat = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    loss, parts = add_loss(params, disc.apply, delta_hat, gradient_penalty=2.0)
    # (D(0) - 1)^2 = 0.25; D = [1.5, 2.5] -> ((2.5)^2 + (3.5)^2) / 2 = 9.25; |grad D|^2 = |w|^2 = 5
    assert float(parts["disc_pos"]) == pytest.approx(0.25)
    assert float(parts["disc_neg"]) == pytest.approx(9.25)
    assert float(parts["disc_gp"]) == pytest.approx(5.0)
    assert float(loss) == pytest.approx(0.25 + 9.25 + 2 * 5.0)
    # reward max(0, 1 - (D - 1)^2 / 4): D = 1 -> 1, D = 0 -> 0.75, D = -1 -> 0
    state = AddState(
        {"params": {"Dense_0": {"kernel": jnp.array([[-1.0], [0.0]]), "bias": jnp.array([1.0])}}},
        None, jnp.ones(2), jnp.ones((), jnp.int32),
    )  # fmt: skip
    r = add_reward(state, jnp.array([[0.0, 5.0], [1.0, 0.0], [2.0, 0.0]]), AddConfig(hidden=()))
    np.testing.assert_allclose(r, [1.0, 0.75, 0.0], atol=1e-6)


def test_exp_reward_kernels():
    names = ("joint_angle/a", "joint_angle/b", "body_position/x", "root_rotation")
    from emulator.learning.rewards import ExpConfig

    cfg = ExpConfig(fixed_base=True)  # root terms dropped, weights renormalised (0.4, 0.2)
    r = exp_reward(jnp.array([[0.3, 0.3, 0.1, 9.0], [0.0, 0.0, 0.0, 0.0]]), names, cfg)
    np.testing.assert_allclose(r, [np.exp(-1.0), 1.0], rtol=1e-6)
    r = exp_reward(jnp.array([[0.0, 0.0, 0.1, 0.0]]), names, cfg)
    np.testing.assert_allclose(r, [0.4 / 0.6 + 0.2 / 0.6 * np.exp(-1.0)], rtol=1e-6)
    # a partial table changes the families it names and keeps the others' defaults
    tight = ExpConfig(weights={"root_rotation": 0.4}, sigmas={"root_rotation": 0.15})
    d = jnp.array([[0.0, 0.0, 0.0, 0.15]])
    # joint 0.4 + body 0.2 + root 0.4 of 1.0: a root error of one (new) sigma costs 0.4 (1 - 1/e)
    np.testing.assert_allclose(exp_reward(d, names, tight), [0.6 + 0.4 * np.exp(-1.0)], rtol=1e-6)
    # root_xcom weighs nothing by default (recipes from before it score as they did); weighted,
    # an extrapolated error of one sigma (5 cm) costs its share (1 - 1/e)
    names = (*names, "root_xcom")
    d = jnp.array([[0.0, 0.0, 0.0, 0.0, 0.05]])
    np.testing.assert_allclose(exp_reward(d, names, ExpConfig()), [1.0], rtol=1e-6)
    xcom = ExpConfig(weights={"root_xcom": 0.2})  # joint 0.4 + body 0.2 + rotation 0.1 + 0.2
    np.testing.assert_allclose(exp_reward(d, names, xcom), [0.7 / 0.9 + 0.2 / 0.9 * np.exp(-1.0)], rtol=1e-6)
    with pytest.raises(ValueError, match=r"exp sigmas: unknown families \['root'\]"):
        ExpConfig(sigmas={"root": 0.1})


def test_effort_cost_by_hand():
    from emulator.learning.rewards import ExpConfig, effort_cost

    # activations (0.5, 0.5, 0, 1): mean square (0.25 + 0.25 + 0 + 1) / 4 = 0.375; x 0.2 = 0.075
    a = jnp.array([[0.5, 0.5, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(effort_cost(a, ExpConfig(effort=0.2)), [0.075, 0.0], rtol=1e-6)
    np.testing.assert_allclose(effort_cost(a, ExpConfig()), [0.0, 0.0])  # off by default
    with pytest.raises(ValueError, match="exp effort must be >= 0, got -0.1"):
        ExpConfig(effort=-0.1)
