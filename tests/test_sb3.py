"""Stable-Baselines3 as a real client: its PPO trains on the project's env and vector env."""

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from mario_rl.env.pipeline import EnvConfig, make_env
from mario_rl.integrations.sb3 import make_sb3_vec_env, unbatch_info

# Small frames, and episodes that end within a few hundred steps of standing still.
CONFIG = EnvConfig(actions="right_only", resize=(42, 42), no_progress_steps=20)


def quick_ppo(envs) -> PPO:
    return PPO("CnnPolicy", envs, n_steps=512, batch_size=256, n_epochs=1, seed=0, device="cpu")


@pytest.mark.parametrize("vector", [False, True], ids=["make_env", "make_vector_env"])
def test_sb3_ppo_trains_2048_steps_and_reads_the_episodes(vector):
    if vector:
        envs = make_sb3_vec_env(2, CONFIG, seed=0)
    else:
        envs = DummyVecEnv([lambda i=i: make_env(CONFIG, seed=i) for i in range(2)])
    model = quick_ppo(envs)
    try:
        model.learn(total_timesteps=2_048)
    finally:
        envs.close()
    assert model.num_timesteps == 2_048
    # SB3 keeps the episodes' r/l/t; standing-still episodes end by truncation.
    assert len(model.ep_info_buffer) >= 2
    assert all({"r", "l", "t"} <= set(episode) for episode in model.ep_info_buffer)


def test_the_vector_adapter_steps_as_single_envs_and_marks_truncations():
    envs = make_sb3_vec_env(2, CONFIG, seed=3)
    singles = [make_env(CONFIG, seed=3 + i) for i in range(2)]
    try:
        obs = envs.reset()
        single_obs = [env.reset(seed=3 + i)[0] for i, env in enumerate(singles)]
        assert all(np.array_equal(obs[i], single_obs[i]) for i in range(2))
        ended = 0
        for step in range(60):
            actions = np.array([0, step % 5])  # env 0 stands still: truncated at 20 steps
            obs, rewards, dones, infos = envs.step(actions)
            for i, env in enumerate(singles):
                s_obs, s_reward, s_term, s_trunc, s_info = env.step(int(actions[i]))
                assert rewards[i] == pytest.approx(s_reward) and dones[i] == (s_term or s_trunc)
                if dones[i]:
                    ended += 1
                    assert np.array_equal(infos[i]["terminal_observation"], s_obs)
                    assert infos[i]["TimeLimit.truncated"] == (s_trunc and not s_term)
                    assert infos[i]["mario_episode"]["max_x"] == s_info["mario_episode"]["max_x"]
                    assert infos[i]["episode"]["l"] == s_info["episode"]["l"]
                    s_obs, _ = env.reset()
                assert np.array_equal(obs[i], s_obs)
        assert ended >= 2
    finally:
        envs.close()
        for env in singles:
            env.close()


def test_unbatch_info_keeps_only_what_each_env_reported():
    info = {
        "x": np.array([1, 2]),
        "_x": np.array([True, False]),
        "episode": {"r": np.array([0.0, 5.0]), "_r": np.array([False, True])},
        "_episode": np.array([False, True]),
    }
    assert unbatch_info(info, 0) == {"x": 1}
    assert unbatch_info(info, 1) == {"episode": {"r": 5.0}}
