"""Stable-Baselines3 as a real client: its PPO trains on the project's env and vector env."""

import json

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
    return PPO("CnnPolicy", envs, n_steps=128, batch_size=128, n_epochs=1, seed=0, device="cpu")


@pytest.mark.parametrize("vector", [False, True], ids=["make_env", "make_vector_env"])
def test_sb3_ppo_trains_512_steps_and_reads_the_episodes(vector):
    if vector:
        envs = make_sb3_vec_env(2, CONFIG, seed=0)
    else:
        envs = DummyVecEnv([lambda i=i: make_env(CONFIG, seed=i) for i in range(2)])
    model = quick_ppo(envs)
    try:
        # Two rollouts of 2 envs x 128 steps, each learned: the second goes on from the
        # observations the first left.
        model.learn(total_timesteps=512)
    finally:
        envs.close()
    assert model.num_timesteps == 512
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


@pytest.fixture(scope="module")
def sb3_zip(tmp_path_factory):
    from mario_rl.integrations.sb3 import save_sb3_model

    envs = DummyVecEnv([lambda: make_env(CONFIG, seed=0)])
    model = PPO("CnnPolicy", envs, n_steps=64, batch_size=64, n_epochs=1, device="cpu")
    return save_sb3_model(model, tmp_path_factory.mktemp("sb3") / "model", CONFIG)


def test_an_sb3_model_is_evaluated_like_any_checkpoint(sb3_zip, tmp_path, capsys):
    from mario_rl.agents import load_policy
    from mario_rl.cli.main import main

    policy = load_policy(sb3_zip)
    assert policy.env_config == CONFIG and policy.num_actions == 5
    obs = np.stack([make_env(CONFIG, seed=0).reset(seed=0)[0]] * 3)
    probabilities = policy.probabilities(obs)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (policy.act(obs) == probabilities.argmax(axis=1)).all()
    out = tmp_path / "eval.json"
    args = ["eval", str(sb3_zip), "--episodes", "1", "--max-stuck-steps", "10", "--quiet"]
    assert main([*args, "--no-control", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["algo"] == "sb3-ppo"


def test_an_sb3_zip_without_its_env_or_with_pickled_weights_is_refused(sb3_zip, tmp_path):
    import io
    import os
    import zipfile

    import torch

    from mario_rl.agents import load_policy
    from mario_rl.runs import CheckpointError

    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(sb3_zip) as source, zipfile.ZipFile(plain, "w") as target:
        for name in source.namelist():
            if name != "mario_rl_env_config.json":
                target.writestr(name, source.read(name))
    with pytest.raises(CheckpointError, match="needs the env config it was trained on"):
        load_policy(plain)

    marker = tmp_path / "ran"

    class RunsCode:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.zip"
    buffer = io.BytesIO()
    torch.save({"w": RunsCode()}, buffer)
    with zipfile.ZipFile(sb3_zip) as source, zipfile.ZipFile(evil, "w") as target:
        for name in source.namelist():
            data = buffer.getvalue() if name == "policy.pth" else source.read(name)
            target.writestr(name, data)
    with pytest.raises(CheckpointError, match=r"refused, its policy\.pth needs pickle"):
        load_policy(evil)
    assert not marker.exists()
