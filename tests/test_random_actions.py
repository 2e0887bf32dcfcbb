"""The random agent as a training run (`train --algo random`): logged, resumed, compared
and evaluated like the learning agents."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from mario_rl.agents import load_policy
from mario_rl.cli.main import main
from mario_rl.compare import compare
from mario_rl.evaluate import acting_mode
from mario_rl.runs import list_checkpoints, load_checkpoint

# Short episodes: a random Mario that stalls for 20 agent steps is cut off.
TINY = ["--level", "1-1", "--no-progress-steps", "20", "--num-envs", "1", "--quiet"]


def random_run(runs: Path, frames: int, seed: int = 0) -> Path:
    args = ["train", "--algo", "random", "--frames", str(frames), "--seed", str(seed), *TINY]
    assert main([*args, "--runs-dir", str(runs)]) == 0
    (run_dir,) = runs.iterdir()
    return run_dir


def episodes(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "episodes.csv").open(newline="") as file:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(file)]


def test_a_random_run_is_logged_resumed_and_compared_like_a_training_run(tmp_path):
    run_dir = random_run(tmp_path / "runs", 1500)
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["algo"], config["preset"], config["agent"]) == (
        "random",
        "ppo-fast",
        {"num_envs": 1},
    )
    first = episodes(run_dir)
    assert first and all(int(row["flag"]) == 0 for row in first)
    # The budget stops it within one agent step (a 4-frame span) of 1,500 frames.
    (checkpoint,) = list_checkpoints(run_dir / "checkpoints")
    first_state = load_checkpoint(checkpoint)
    assert 1500 <= first_state["counters"]["frames"] <= 1500 + 4
    assert main(["train", "--resume", str(run_dir), "--frames", "3000", "--quiet"]) == 0
    newest = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    assert 3000 <= newest["counters"]["frames"] <= 3000 + 4
    # The resume goes on from the checkpoint: its frames, and the action generator's draws.
    resumed = episodes(run_dir)
    assert resumed[: len(first)] == first and len(resumed) > len(first)
    assert int(resumed[len(first)]["frames"]) > first_state["counters"]["frames"]
    generator = np.random.default_rng()
    generator.bit_generator.state = first_state["action_rng"]
    steps = newest["counters"]["steps"] - first_state["counters"]["steps"]
    for _ in range(steps):  # one env: one draw per agent step
        generator.integers(0, newest["num_actions"], 1)
    assert generator.bit_generator.state == newest["action_rng"]
    summary = compare([run_dir], tmp_path / "curves.png", metric="max_x")
    assert list(summary) == ["random (ppo-fast pipeline)"]
    assert (tmp_path / "curves.png").is_file()


def test_a_seed_fixes_a_random_run(tmp_path):
    one = random_run(tmp_path / "one", 1200, seed=3)
    two = random_run(tmp_path / "two", 1200, seed=3)
    other = random_run(tmp_path / "other", 1200, seed=4)
    assert episodes(one) == episodes(two)
    assert episodes(one) != episodes(other)


def test_the_random_agent_takes_no_learning_flags(tmp_path, capsys):
    args = ["train", "--algo", "random", "--lr", "1e-3", "--frames", "100", *TINY]
    assert main([*args, "--runs-dir", str(tmp_path)]) == 2
    assert "--lr" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_random_checkpoint_evaluates_as_uniform_actions(tmp_path):
    run_dir = random_run(tmp_path / "runs", 600)
    policy = load_policy(run_dir)
    assert acting_mode(policy, 0.0) == "uniform"
    obs = np.zeros((4000, 1), np.uint8)  # what it sees does not matter
    policy.rng = np.random.default_rng(7)
    actions = policy.act(obs)
    counts = np.bincount(actions, minlength=policy.num_actions)
    # Every action, about equally often (the expected count is 4000 / actions each).
    assert counts.min() > 0.8 * len(obs) / policy.num_actions
    policy.rng = np.random.default_rng(7)
    assert np.array_equal(policy.act(obs), actions)
    policy.set_sampling(True)
    assert set(policy.act(obs[:200])) <= set(range(policy.num_actions))


def test_a_random_run_on_a_normalised_pipeline_skips_measuring_it(tmp_path):
    # curiosity-ppo normalises by 10,000 random moves first; a random agent does not look.
    args = ["train", "--preset", "curiosity-ppo", "--algo", "random", "--frames", "600", *TINY]
    assert main([*args, "--runs-dir", str(tmp_path)]) == 0
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "config.json").read_text())["env"]["actions"] == "curiosity"
    policy = load_policy(run_dir)
    assert policy.env_config.normalize_moves == 0
    assert policy.num_actions == 14
