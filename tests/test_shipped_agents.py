"""The agents shipped in models/: they follow the convention, the README quotes their
eval.json, and they replay the first episodes of that evaluation exactly.

Evaluation is deterministic given its seed (episode i is seeded `seed + i`, the emulator
is deterministic, and a sampling policy draws from a generator seeded the same way), so
the first episodes of a short evaluation must repeat the first episodes of eval.json.
"""

import json
from pathlib import Path

import pytest
import torch

from mario_rl.agents import load_policy
from mario_rl.bundled import MODELS_DIR_ENV, bundled_levels, bundled_table_row, models_dir
from mario_rl.cli.main import main
from mario_rl.evaluate import evaluate
from mario_rl.leaderboard import DATA_DIR_ENV, Leaderboard

REPO = Path(__file__).resolve().parents[1]
REPLAYED_EPISODES = 3
"""Episodes of each shipped agent's eval.json replayed here (a few seconds each)."""


def shipped_levels() -> list[str]:
    return bundled_levels(REPO / "models")


def test_at_least_one_agent_is_shipped(monkeypatch):
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    assert models_dir() == REPO / "models"
    assert "1-1" in shipped_levels()


@pytest.mark.parametrize("level", shipped_levels())
def test_shipped_agent_follows_the_convention_and_the_readme(level):
    folder = REPO / "models" / level
    report = json.loads((folder / "eval.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    assert report["level"] == config["env"]["level"] == level
    assert report["checkpoint"] == "model.pt" and report["noop_max"] == 30
    assert report["epsilon"] == 0.0 and report["episodes"] >= 20
    # Measured as docs/architecture.md section 3 asks: sticky actions, the deterministic number and
    # the blind-replay control beside it.
    assert report["sticky_probability"] == 0.25
    assert report["deterministic_eval"]["episodes"] == report["episodes"]
    assert report["control"]["episodes"] == report["episodes"]
    lines = (folder / "command.txt").read_text().splitlines()
    commands = [line for line in lines if not line.startswith("#")]
    # Training commands, or the level campaign's (which trains and checks the level).
    starts = ("mario-rl train ", "mario-rl levels-table ")
    assert commands and all(command.startswith(starts) for command in commands)
    checkpoint = torch.load(folder / "model.pt", weights_only=True)
    assert checkpoint["act_by_sampling"] == report["sample"]
    assert "optimizer_state" not in checkpoint
    assert (folder / "model.pt").stat().st_size < 2_000_000
    assert bundled_table_row(report, folder) in (REPO / "README.md").read_text().splitlines()


@pytest.mark.parametrize("level", shipped_levels())
def test_shipped_agent_replays_its_evaluation(level):
    folder = REPO / "models" / level
    report = json.loads((folder / "eval.json").read_text())
    replay = evaluate(
        load_policy(folder / "model.pt"),
        level=level,
        episodes=REPLAYED_EPISODES,
        noop_max=report["noop_max"],
        seed=report["seed"],
        max_stuck_steps=report["max_stuck_steps"],
        sticky=report["sticky_probability"],
    )
    assert replay["sample"] == report["sample"]
    keys = ("seed", "cleared", "max_x", "frames", "frames_to_clear", "noops", "trajectory")
    expected = [{key: episode[key] for key in keys} for episode in report["per_episode"]]
    replayed = [{key: episode[key] for key in keys} for episode in replay["per_episode"]]
    assert replayed == expected[:REPLAYED_EPISODES]


def test_the_bundled_agent_races_the_scripted_person(tmp_path, monkeypatch, capsys):
    """`mario-rl race` with no --agent races the bundled 1-1 agent; the scripted person of
    tests/data/1-1-finish.jsonl clears in 1152 frames, the bundled agent in 1169 (a race is
    the deterministic game from the person's start: the same result every run)."""
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    inputs = Path(__file__).parent / "data" / "1-1-finish.jsonl"
    args = ["race", "--level", "1-1", "--name", "ann", "--inputs", str(inputs)]
    assert main([*args, "--fast", "--scale", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "ann: finished in 1152 frames" in out
    assert "agent: finished in 1169 frames" in out and "ann wins" in out
    entries = Leaderboard(tmp_path / "data" / "leaderboard.sqlite3").entries("1-1")
    assert [entry.kind for entry in entries] == ["human", "agent"]
    assert all(entry.frames is not None for entry in entries)
