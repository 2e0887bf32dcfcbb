"""Smoke runs of PPO through `mario-rl train` (both presets), resume, eval, and determinism."""

import copy
import csv
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from gymnasium import spaces

from mario_rl.agents import load_policy
from mario_rl.agents.ppo import ICM, PPOAgent, PPOConfig, Rollout
from mario_rl.cli.main import main
from mario_rl.env.pipeline import EnvConfig
from mario_rl.env.snapshots import ResetFromOwnSnapshots
from mario_rl.evaluate import eval_env_config
from mario_rl.presets import get_preset
from mario_rl.runs import Budget, RunConfig, load_checkpoint
from mario_rl.training import train

TINY = ["--num-envs", "2", "--num-steps", "16", "--num-minibatches", "2", "--num-epochs", "1"]


def _train(runs: Path, *args: str) -> Path:
    assert main(["train", *args, "--runs-dir", str(runs), "--quiet"]) == 0
    return max(runs.iterdir())


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    return _train(
        runs, "--preset", "ppo-fast", "--frames", "300", "--seed", "1", *TINY,
        "--snapshot-starts", "1", "--no-progress-steps", "10", "--checkpoint-every", "150",
    )  # fmt: skip


def test_ppo_fast_trains_a_run_with_checkpoints(fast_run):
    config = json.loads((fast_run / "config.json").read_text())
    assert (config["preset"], config["algo"]) == ("ppo-fast", "ppo")
    assert (
        config["agent"]["num_steps"] == 16 and config["agent"]["snapshot_start_probability"] == 1.0
    )
    assert config["agent"]["overlap"] and config["env"]["resize"] == [42, 42]
    checkpoint = load_checkpoint(fast_run)
    assert checkpoint["counters"]["frames"] >= 300 and checkpoint["counters"]["updates"] >= 1
    assert checkpoint["obs_stats"] is None and checkpoint["network"] == "small"
    assert list(fast_run.glob("events.out.tfevents.*"))


def test_resume_continues_the_counters_and_the_log(fast_run):
    before = load_checkpoint(fast_run)["counters"]
    rows_before = list(csv.DictReader((fast_run / "episodes.csv").open()))
    assert main(["train", "--resume", str(fast_run), "--frames", "700", "--quiet"]) == 0
    after = load_checkpoint(fast_run)["counters"]
    assert after["frames"] >= 700 and after["updates"] > before["updates"]
    rows_after = list(csv.DictReader((fast_run / "episodes.csv").open()))
    assert rows_after[: len(rows_before)] == rows_before
    assert all(int(row["frames"]) <= after["frames"] for row in rows_after)


def test_eval_starts_from_the_level_start_without_snapshot_starts(fast_run, tmp_path):
    policy = load_policy(fast_run)
    env = policy.make_env(eval_env_config(policy.env_config, None, 0, 25), 0)
    layer = env
    while hasattr(layer, "env"):
        assert not isinstance(layer, ResetFromOwnSnapshots)
        layer = layer.env
    _, info = env.reset(seed=0)
    assert info["x_pos"] == 40 and "snapshot_start" not in info
    env.close()
    out = tmp_path / "eval.json"
    assert main(["eval", str(fast_run), "--episodes", "2", "--max-stuck-steps", "20",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    assert report["algo"] == "ppo" and report["episodes"] == 2


def test_record_writes_a_video(fast_run, tmp_path):
    out = tmp_path / "mario.gif"
    assert main(["record", str(fast_run), "--out", str(out), "--max-stuck-steps", "15"]) == 0
    frames = imageio.mimread(out)
    # The full-colour screen, not the agent's 42x42 input; at least the reset's frame and
    # the 15 steps it takes to be stuck.
    assert frames[0].shape[:2] == (240, 256) and len(frames) >= 16


def test_curiosity_preset_trains_and_evaluates_with_its_own_normalisation(tmp_path):
    run = _train(
        tmp_path, "--preset", "curiosity-ppo", "--frames", "200", "--num-envs", "2",
        "--num-steps", "8", "--num-minibatches", "2", "--num-epochs", "1",
        "--normalize-moves", "20",
    )  # fmt: skip
    checkpoint = load_checkpoint(run)
    assert checkpoint["algo"] == "ppo-icm"
    # The ICM's weights are saved whole, for the run's 3x84x84 frames and 14 actions.
    icm = ICM((3, 84, 84), 14, "nature", checkpoint["agent_config"]["icm_residual_blocks"])
    icm.load_state_dict(checkpoint["icm_state"])  # strict: every key, every shape
    stats = checkpoint["obs_stats"]
    assert np.asarray(stats["mean"]).shape == (3, 84, 84) and stats["std"] > 0
    policy = load_policy(run)
    env = policy.make_env(eval_env_config(policy.env_config, None, 0, 5), 0)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (3, 84, 84) and obs.min() < 0
    env.close()
    assert main(["eval", str(run), "--episodes", "1", "--max-stuck-steps", "5", "--quiet",
                 "--out", str(tmp_path / "e.json")]) == 0  # fmt: skip


def test_the_mixed_curiosity_preset_learns_from_both_rewards(tmp_path):
    run = _train(
        tmp_path, "--preset", "ppo-levels-icm", "--frames", "300", "--num-envs", "2",
        "--num-steps", "8", "--num-minibatches", "2", "--num-epochs", "1",
        "--terminal-next-obs", "next-start",
    )  # fmt: skip
    checkpoint = load_checkpoint(run)
    config = checkpoint["agent_config"]
    assert checkpoint["algo"] == "ppo-icm"
    assert config["reward_mode"] == "mixed" and config["intrinsic_coef"] == 0.1
    assert config["terminal_next_obs"] == "next-start"  # the death-pairing ablation's flag
    # The ICM on the policy's small torso: 42x42 frames, a stack of 4, RIGHT_ONLY's 5.
    icm = ICM((4, 42, 42), 5, "small", config["icm_residual_blocks"])
    icm.load_state_dict(checkpoint["icm_state"])
    assert get_preset("ppo-levels-icm").env == get_preset("ppo-levels").env


def test_the_campaigns_per_level_preset_is_its_recipe_with_left_and_down():
    from mario_rl.env.actions import action_set

    recipe, complex_ = get_preset("ppo-levels"), get_preset("ppo-levels-complex")
    assert complex_.agent == recipe.agent
    assert replace(complex_.env, actions=recipe.env.actions) == recipe.env
    buttons = {button for combo in action_set(complex_.env.actions) for button in combo}
    assert {"left", "down"} <= buttons
    assert not {"left", "down"} & {b for c in action_set(recipe.env.actions) for b in c}


def test_one_model_trains_on_several_levels_and_is_evaluated_per_level(tmp_path):
    # ppo-levels: snapshot and death starts on, so their per-level pools run too.
    run = _train(
        tmp_path, "--preset", "ppo-levels", "--train-levels", "1-2", "4-1", "--frames", "1500",
        *TINY, "--no-progress-steps", "3",
    )  # fmt: skip
    config = json.loads((run / "config.json").read_text())
    assert config["env"]["level"] == "1-1" and config["env"]["levels"] == ["1-2", "4-1"]
    with (run / "episodes.csv").open(newline="") as file:
        played = {row["level"] for row in csv.DictReader(file)}
    assert played == {"1-1", "1-2", "4-1"}
    out = tmp_path / "e.json"
    args = ["eval", str(run), "--level", "4-1", "--episodes", "1", "--max-stuck-steps", "3"]
    assert main([*args, "--no-control", "--quiet", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["level"] == "4-1"


def test_the_same_seed_trains_the_same_weights_with_overlap(tmp_path):
    env_config, config = get_preset("ppo-fast").env, get_preset("ppo-fast").agent
    config = replace(config, num_envs=2, num_steps=8, num_minibatches=2, num_epochs=2)
    env_config = replace(env_config, no_progress_steps=5)
    states = []
    for name in ("a", "b"):
        run = RunConfig(seed=5, frames=200, runs_dir=str(tmp_path / name), progress=False)
        states.append(load_checkpoint(train(run, env_config, config))["model_state"])
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "dqn-fast", "--algo", "ppo"], "--algo ppo does not fit a DQNConfig"),
        (["--preset", "dqn-fast", "--num-steps", "8"], "--num-steps do(es) not apply"),
        (["--preset", "ppo-fast", "--burn-in", "8"], "--burn-in do(es) not apply"),
    ],
)
def test_flags_of_the_other_family_are_refused(args, message, capsys):
    assert main(["train", *args, "--frames", "10"]) == 2
    assert message in capsys.readouterr().err


def _agent_and_rollout(config: PPOConfig, obs_shape, actions: int) -> tuple[PPOAgent, Rollout]:
    config = replace(config, num_envs=2, num_steps=2, num_minibatches=1, icm_residual_blocks=1)
    obs_space = spaces.Box(0, 255, obs_shape, np.uint8)
    torch.manual_seed(0)
    agent = PPOAgent(config, obs_space, actions)
    rollout = Rollout.allocate(2, 2, obs_space, torch.device("cpu"))
    rollout.obs[:] = torch.randint(0, 256, rollout.obs.shape, dtype=torch.uint8)
    rollout.next_obs[:] = torch.randint(0, 256, rollout.obs.shape, dtype=torch.uint8)
    return agent, rollout


def test_the_curiosity_preset_learns_from_surprisal_alone():
    # The curiosity write-up: the game's reward never reaches the agent.
    preset = get_preset("curiosity-ppo")
    agent, rollout = _agent_and_rollout(preset.agent, (3, 84, 84), 14)
    twin = copy.deepcopy(agent)
    without_game, _ = agent.rewards(rollout)
    rollout.rewards[:] = torch.tensor([[15.0, -15.0], [3.0, 0.0]])
    with_game, _ = twin.rewards(rollout)
    torch.testing.assert_close(with_game, without_game)
    assert without_game.abs().sum() > 0
    checkpoint = agent.checkpoint(preset.env)
    assert checkpoint["algo"] == preset.algo == "ppo-icm" and checkpoint["icm_state"]


def test_ppo_fast_learns_from_the_scaled_game_reward_without_an_icm():
    preset = get_preset("ppo-fast")
    agent, rollout = _agent_and_rollout(preset.agent, (4, 42, 42), 5)
    rollout.rewards[:] = torch.tensor([[3.0, -15.0], [0.0, 1.0]])
    rewards, metrics = agent.rewards(rollout)
    # "Progress per step becomes about 0..1 and death -1.5": the reward times 0.1, no bonus.
    torch.testing.assert_close(rewards, torch.tensor([[0.3, -1.5], [0.0, 0.1]]))
    assert agent.icm is None and metrics == {}
    assert agent.checkpoint(EnvConfig())["algo"] == preset.algo == "ppo"


def test_budget_fraction_follows_frames_or_minutes(monkeypatch):
    clock = iter([0.0, 30.0, 90.0, 150.0, 0.0, 0.0, 0.0])
    monkeypatch.setattr("mario_rl.runs.time", SimpleNamespace(perf_counter=lambda: next(clock)))
    budget = Budget(frames=None, minutes=2.0)
    assert budget.fraction(10**9) == pytest.approx(0.25)
    assert budget.spent(0) is False
    assert budget.spent(0) is True
    frames_only = Budget(frames=1000, minutes=None)
    assert (frames_only.fraction(250), frames_only.fraction(5000)) == (0.25, 1.0)


def test_relabel_gives_the_rollout_the_current_policys_log_probabilities():
    obs_space = spaces.Box(0, 255, (4, 42, 42), np.uint8)
    config = PPOConfig(num_envs=2, num_steps=3, num_minibatches=1, network="small", overlap=True)
    agent = PPOAgent(config, obs_space, 5)
    rollout = Rollout.allocate(3, 2, obs_space, torch.device("cpu"))
    rollout.obs[:] = torch.randint(0, 256, rollout.obs.shape, dtype=torch.uint8)
    rollout.actions[:] = torch.randint(0, 5, (3, 2))
    rollout.logprobs[:] = -9.0
    agent.relabel(rollout)
    logits, _ = agent.policy(rollout.obs.flatten(0, 1))
    expected = torch.log_softmax(logits, -1).gather(1, rollout.actions.flatten()[:, None])
    torch.testing.assert_close(rollout.logprobs.flatten(), expected.squeeze(1))


def test_schedules_can_span_more_than_the_budget():
    """A run trained in pieces anneals over the whole (`schedule_frames`), each piece
    stopping at its own budget."""
    piece = Budget(frames=1000, minutes=None, schedule_frames=4000)
    assert piece.schedule(1000) == 0.25 and piece.spent(1000)
    assert piece.schedule(9000) == 1.0
    whole = Budget(frames=1000, minutes=None)
    assert whole.schedule(250) == whole.fraction(250) == 0.25
    with pytest.raises(ValueError, match="schedule_frames: expected a positive number"):
        Budget(frames=1000, minutes=None, schedule_frames=0)
