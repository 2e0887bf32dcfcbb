"""Every command once, on tiny budgets, through the real entry point."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mario_rl.cli.main import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mario_rl", *args], capture_output=True, text=True, timeout=300
    )


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("levels", "actions", "random", "bench"):
        assert command in result.stdout


def test_a_light_command_starts_without_torch():
    # Building the parser must not import the agents: torch alone takes seconds to load.
    code = (
        "import sys; from mario_rl.cli.main import main; code = main(['levels']); "
        "sys.exit(3 if 'torch' in sys.modules else code)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.returncode == 0, "torch was imported by `mario-rl levels`"


def test_the_train_help_names_every_preset_and_its_source(capsys):
    from mario_rl.agents.ppo import config as ppo_config
    from mario_rl.cli.args import PRESET_NAMES, TERMINAL_NEXT_OBS
    from mario_rl.presets import PRESETS

    assert tuple(PRESETS) == PRESET_NAMES
    assert TERMINAL_NEXT_OBS == ppo_config.TERMINAL_NEXT_OBS
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "PyTorch Mario tutorial" in out and "curiosity write-up" in out


def test_levels(capsys):
    assert main(["levels"]) == 0
    out = capsys.readouterr().out
    assert "8-4" in out and "1-1" in out and "full" in out


def test_actions(capsys):
    assert main(["actions", "curiosity"]) == 0
    out = capsys.readouterr().out
    assert "right+A+B" in out and " 13 " in out


def test_random_agent_reports_frames_per_second_and_furthest_x():
    result = run_cli("random", "--level", "1-1", "--steps", "40", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "frames/s" in result.stdout and "furthest x" in result.stdout
    assert "160 frames" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["random", "--level", "9-9"], "unknown level '9-9': expected W-S"),
        (["random", "--steps", "0"], "expected a positive integer, got '0'"),
        (["actions", "everything"], "unknown action set 'everything'"),
        (["random", "--steps", "inf"], "expected a positive integer, got 'inf'"),
        (["eval", "1-1", "--episodes", "1e400"], "expected a positive integer, got '1e400'"),
        (["train", "--frames", "inf"], "expected a positive whole number of frames, got 'inf'"),
        (["train", "--minutes", "inf"], "expected a positive number, got 'inf'"),
        (["train", "--entropy-coef", "-1"], "expected a number >= 0, got '-1'"),
        (["train", "--sticky", "1"], "expected a number in [0, 1), got '1'"),
        (["eval", "1-1", "--noop-max", "-5"], "expected a whole number >= 0, got '-5'"),
        (["train", "--noop-max", "-5"], "expected a whole number >= 0, got '-5'"),
        (["train", "--burn-in", "inf"], "expected a whole number >= 0, got 'inf'"),
        (["grid", "--seed", "-1"], "expected a whole number >= 0, got '-1'"),
        (["eval", "1-1", "--workers", "0"], "expected a positive integer, got '0'"),
        # argparse's own errors print the command's usage first (30 lines for train's).
        (["train", "--level", "9-9"], "mario-rl train: error: argument --level: unknown level"),
        (["train", "--bogus"], "mario-rl train: error: unrecognized arguments: --bogus"),
        (["bench", "env", "--bogus"], "mario-rl bench env: error: unrecognized arguments"),
        (["death-map", str(REPO / "missing.json"), "--out", "x.png"], "missing.json: no such file"),
        (["eval", str(REPO / "README.md")], "README.md: not a readable checkpoint"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_bench_env_prints_the_table():
    # Two rounds (of 60 frames a setting), not the default three: each starts its workers.
    result = run_cli("bench", "env", "--frames", "120", "--max-workers", "2", "--rounds", "2")
    assert result.returncode == 0, result.stderr
    for setting in ("raw emulator", "in process", "1 worker", "2 workers", "2 workers in turn"):
        assert setting in result.stdout
    # A setting's row adds up its rounds.
    assert re.search(r"raw emulator\W+120\W", result.stdout), result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "1-1", "--episodes", "1", "--out", "/proc/x.json"],
        ["record", "1-1", "--out", "/proc/x.mp4"],
        ["compare", ".", "--out", "/proc/c.png"],
        ["grid", "--out", "/proc/grid"],
        ["train", "--frames", "100", "--runs-dir", "/proc/runs"],
        ["levels-table", "--levels", "1-1", "--frames", "100", "--out", "/proc/t.md"],
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_the_work(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "/proc/" in err and len(err.strip().splitlines()) == 1


def test_an_output_path_that_is_a_directory_is_refused(tmp_path, capsys):
    assert main(["eval", "1-1", "--episodes", "1", "--out", str(tmp_path)]) == 2
    assert f"{tmp_path} is a directory: expected a file path" in capsys.readouterr().err


def test_eval_workers_refuse_a_gpu(monkeypatch, capsys):
    """Workers act on the CPU: with a GPU asked for, their report could differ."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert main(["eval", "1-1", "--workers", "2", "--device", "cuda", "--quiet"]) == 2
    assert "evaluation workers act on the CPU" in capsys.readouterr().err
