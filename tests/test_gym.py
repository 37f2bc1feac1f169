"""The Gymnasium view: registered on `import emulator`, passes gymnasium's env checker, is
reproducible from a seed, and steps a random policy."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import emulator  # noqa: F401  (registers the env)
from emulator.simulation.env import METRIC_NAMES


@pytest.mark.parametrize("model", ["elbow", "myolegs"])
def test_env_passes_the_checker_and_runs_a_random_policy(model):
    env = gymnasium.make("emulator/MuscleTracking-v0", model=model)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    again, info2 = env.reset(seed=3)
    np.testing.assert_array_equal(obs, again)
    assert info["frame"] == info2["frame"] and env.observation_space.contains(obs)
    env.action_space.seed(0)
    ends = steps = 0
    for _ in range(200):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert 0.0 <= reward <= 1.0 and set(METRIC_NAMES) <= set(info)
        assert obs.dtype == np.float32 and obs.shape == env.observation_space.shape
        if terminated or truncated:
            ends += 1
            env.reset()
    assert steps == 200
    if model == "myolegs":  # random excitations cannot keep the body up for 2 s
        assert ends >= 1
    env.close()


def test_env_options_reach_the_tracking_env():
    env = gymnasium.make(
        "emulator/MuscleTracking-v0",
        model="myolegs",
        action_space="muscle_length",
        observe_previous_action=True,
    ).unwrapped
    assert env.tracking.config.action_space == "muscle_length"
    assert env.observation_space.shape[0] == env.tracking.obs_dim
    env.reset(seed=0, options={"frame": 10})
    _, _, _, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
    assert info["frame"] == 11 and info["excitation"].max() > 0.5  # shortest lengths: strong drive
    with pytest.raises(TypeError, match="unknown env options"):
        gymnasium.make("emulator/MuscleTracking-v0", model="elbow", colour="red")
