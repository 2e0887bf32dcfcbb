"""`mario-rl bundle` writes the models/ convention; level names find bundled agents; a
stochastic policy can act by sampling. The agents shipped in models/ are checked in
test_shipped_agents.py."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mario_rl.agents import Policy, load_policy
from mario_rl.bundled import MODELS_DIR_ENV, TRAINING_ONLY_FIELDS, bundled_table_row
from mario_rl.cli.main import main
from mario_rl.env.pipeline import EnvConfig


def test_bundle_writes_the_models_convention(untrained_dqn_run, tmp_path, monkeypatch, capsys):
    models = tmp_path / "models"
    commands = ["mario-rl train --preset dqn-fast --frames 200", "mario-rl train --resume X"]
    argv = [
        "bundle",
        str(untrained_dqn_run),
        "--models-dir",
        str(models),
        "--episodes",
        "2",
        "--quiet",
    ]
    argv += ["--max-stuck-steps", "20"]
    assert main([*argv, "--command", commands[0], "--command", commands[1]]) == 0
    out = capsys.readouterr().out
    folder = models / "1-1"
    assert sorted(path.name for path in folder.iterdir()) == [
        "command.txt",
        "config.json",
        "eval.json",
        "model.pt",
    ]
    assert (folder / "command.txt").read_text().splitlines() == commands
    assert (folder / "config.json").read_text() == (untrained_dqn_run / "config.json").read_text()
    source = next((untrained_dqn_run / "checkpoints").glob("*.pt"))
    assert (folder / "model.pt").stat().st_size < source.stat().st_size
    bundled = torch.load(folder / "model.pt", weights_only=True)
    assert not set(TRAINING_ONLY_FIELDS) & set(bundled)
    assert bundled["bundled_from"] == str(source)
    report = json.loads((folder / "eval.json").read_text())
    assert (report["checkpoint"], report["episodes"], report["max_stuck_steps"]) == (
        "model.pt",
        2,
        20,
    )
    assert report["machine"]["cpu_count"] >= 1
    # The headline is under sticky actions, with the blind replay and the deterministic
    # evaluation beside it.
    assert (report["sticky_probability"], report["deterministic"]) == (0.25, False)
    assert report["control"]["kind"] == "blind replay"
    assert report["control"]["episodes"] == 2
    assert report["deterministic_eval"]["sticky_probability"] == 0.0
    assert "per_episode" not in report["deterministic_eval"]
    assert "checkpoint" not in report["deterministic_eval"]  # model.pt, the report's own
    row = f"the README's row: {bundled_table_row(report, folder)}"
    assert " ".join(row.split()) in " ".join(out.split())

    # The bundled file acts exactly as the checkpoint it came from.
    observations = torch.rand(5, 4, 84, 84).numpy()
    assert (
        load_policy(folder / "model.pt").act(observations) == load_policy(source).act(observations)
    ).all()

    # A level name now finds it, for eval and record as for watch and race.
    monkeypatch.setenv(MODELS_DIR_ENV, str(models))
    out_json = tmp_path / "by_level.json"
    argv = ["eval", "1-1", "--episodes", "1", "--max-stuck-steps", "20", "--quiet"]
    assert main([*argv, "--out", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["per_episode"][0] == report["per_episode"][0]
    assert main(["record", "1-2", "--out", str(tmp_path / "x.gif")]) == 2
    assert "no bundled agent for level 1-2 (bundled levels: 1-1)" in capsys.readouterr().err


def bundle_argv(run: Path, models: Path) -> list[str]:
    """`mario-rl bundle` of `run` into `models`, before the evaluation flags."""
    return ["bundle", str(run), "--command", "mario-rl train", "--models-dir", str(models)]


def test_a_failed_bundle_leaves_the_earlier_one_as_it_was(untrained_dqn_run, tmp_path, capsys):
    models = tmp_path / "models"
    argv = bundle_argv(untrained_dqn_run, models)
    quick = ["--episodes", "1", "--max-stuck-steps", "5", "--quiet"]
    assert main([*argv, *quick]) == 0
    folder = models / "1-1"
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert main([*argv, *quick, "--sample"]) == 2
    assert "dqn acts greedily only" in capsys.readouterr().err
    assert main([*argv, *quick, "--level", "1-2"]) == 2
    assert "was trained on level 1-1; bundle it under models/1-1" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert sorted(path.name for path in models.iterdir()) == ["1-1"]
    # A bundle can be re-bundled from itself (its config.json sits beside it).
    again = ["bundle", str(folder / "model.pt"), "--command", "# a note", "--command", "x"]
    assert main([*again, "--models-dir", str(models), *quick]) == 0
    assert (folder / "command.txt").read_text() == "# a note\nx\n"
    assert (folder / "config.json").read_bytes() == before["config.json"]


def test_bundle_refuses_a_checkpoint_without_its_run(untrained_dqn_run, tmp_path, capsys):
    loose = tmp_path / "loose.pt"
    loose.write_bytes(next((untrained_dqn_run / "checkpoints").glob("*.pt")).read_bytes())
    argv = ["bundle", str(loose), "--command", "x", "--models-dir", str(tmp_path / "m")]
    assert main(argv) == 2
    assert "no config.json beside the checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_a_policy_samples_only_when_it_is_stochastic(untrained_dqn_run):
    def probabilities(obs):
        return np.tile([0.0, 0.25, 0.75], (len(obs), 1))

    policy = Policy(
        "ppo", EnvConfig(), 3, lambda obs: np.zeros(len(obs)), probabilities=probabilities
    )
    observations = np.zeros((4000, 1))
    assert (policy.act(observations) == 0).all()
    policy.set_sampling(True)
    policy.rng = np.random.default_rng(0)
    drawn = policy.act(observations)
    assert set(drawn.tolist()) == {1, 2}
    assert abs((drawn == 2).mean() - 0.75) < 0.03
    policy.rng = np.random.default_rng(0)
    assert (policy.act(observations) == drawn).all()
    with pytest.raises(ValueError, match="dqn acts greedily only"):
        load_policy(untrained_dqn_run).set_sampling(True)


def test_a_wrong_or_damaged_bundled_file_is_a_one_line_error(
    untrained_dqn_run, tmp_path, monkeypatch, capsys
):
    models = tmp_path / "models"
    argv = bundle_argv(untrained_dqn_run, models)
    assert main([*argv, "--episodes", "1", "--max-stuck-steps", "5", "--quiet"]) == 0
    model = models / "1-1" / "model.pt"
    good = torch.load(model, weights_only=True)
    monkeypatch.setenv(MODELS_DIR_ENV, str(models))

    def eval_error(payload: dict | None = None) -> str:
        if payload is not None:
            torch.save(payload, model)
        assert main(["eval", "1-1", "--episodes", "1", "--out", str(tmp_path / "e.json")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        return err

    assert "action set 'complex' does not match its env config's 'right_only'" in eval_error(
        {**good, "action_set": "complex"}
    )
    # Consistent names, but the weights are for 5 actions, not 12.
    env = {**good["env_config"], "actions": "complex"}
    err = eval_error({**good, "action_set": "complex", "env_config": env, "num_actions": 12})
    assert "a ddqn checkpoint for action set complex / network nature that does not load" in err
    # Only this package's own agent modules are ever imported.
    for module in ("mario_rl.agents.nothing_here", "mario_rl.agents.tabular"):
        assert f"module {module!r} is not one of this package's agents" in eval_error(
            {**good, "module": module}
        )
    # A file that would run code when unpickled is refused before anything runs.
    marker = tmp_path / "ran"
    assert "refused, it needs pickle to load" in eval_error(
        {**good, "model_state": RunsCode(f"touch {marker}")}
    )
    assert not marker.exists()
    model.write_bytes(model.read_bytes()[:1000])
    assert "not a readable checkpoint" in eval_error()


class RunsCode:
    """What a crafted .pt from the internet holds: unpickling it runs a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_a_bundle_error_names_the_command(tmp_path, capsys):
    argv = ["bundle", str(tmp_path / "nothing.pt"), "--command", "x"]
    assert main([*argv, "--models-dir", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err.startswith("mario-rl bundle: error:")
