"""The race script: its summary over seeds (median and spread, seeds that did not clear
counted) and a clean stop on Ctrl-C or SIGTERM."""

import json
import sys

import pytest
from repo_scripts import load_script

race_1_1 = load_script("benchmarks/race_1_1.py")


def races(*clears: tuple[int, float] | None) -> list[dict]:
    return [
        {"seed": seed, "first_clear": None if c is None else {"frames": c[0], "wall_minutes": c[1]}}
        for seed, c in enumerate(clears)
    ]


def test_median_and_range_of_three_cleared_seeds():
    summary = race_1_1.seeds_summary(races((3e6, 60.0), (1e6, 20.0), (2e6, 45.0)), 4e6)
    assert summary["cleared_seeds"] == 3
    assert (summary["median_frames"], summary["median_wall_minutes"]) == (2e6, 45.0)
    assert summary["frames_range"] == [1e6, 3e6]


def test_a_seed_that_did_not_clear_is_slower_than_the_others():
    summary = race_1_1.seeds_summary(races((3e6, 60.0), None, (1e6, 20.0)), 4e6)
    assert (summary["median_frames"], summary["cleared_seeds"]) == (3e6, 2)


def test_the_median_is_not_reached_when_most_seeds_did_not_clear(capsys):
    summary = race_1_1.seeds_summary(races((1e6, 20.0), None, None), 4e6)
    assert summary["median_frames"] is None and summary["median_wall_minutes"] is None
    race_1_1.print_seeds_summary(summary)
    assert "median: NOT REACHED within 4,000,000 frames" in capsys.readouterr().out


def test_an_even_count_averages_the_middle_two():
    summary = race_1_1.seeds_summary(races((1e6, 10.0), (2e6, 20.0), (4e6, 40.0), None), 5e6)
    assert summary["median_frames"] == 3e6
    assert race_1_1.seeds_summary(races((1e6, 10.0), None), 5e6)["median_frames"] is None


FAKE_TRAINER = """
import os, signal, sys, time
from pathlib import Path
run = Path(sys.argv[1]) / "fake_run"
(run / "checkpoints").mkdir(parents=True)
(run / "config.json").write_text("{}")
(run / "checkpoints" / "frames_250000.pt").write_bytes(b"")
def stop(signum, frame):
    with (run / "sigints").open("a") as log:
        log.write("checkpoint written\\n")
    if sys.argv[2] == "impatient":
        os.kill(os.getppid(), signal.SIGINT)  # the person presses Ctrl-C again meanwhile
    time.sleep(0.5)
    sys.exit(130)
signal.signal(signal.SIGINT, stop)
time.sleep(60)
"""


def fake_training(mood: str = "calm"):
    return lambda args, seed, runs_dir: [sys.executable, "-c", FAKE_TRAINER, str(runs_dir), mood]


@pytest.mark.parametrize(("stop", "status"), [(KeyboardInterrupt, 130), (race_1_1.Terminated, 143)])
def test_a_stopped_race_stops_training_once_and_writes_its_log(tmp_path, monkeypatch, stop, status):
    """Ctrl-C (or SIGTERM) in the middle of an evaluation, then Ctrl-C again while training
    stops: training gets one SIGINT (so its checkpoint is written whole), race.json and the
    seeds summary are written, marked interrupted."""

    def interrupted_evaluation(*args, **kwargs):
        raise stop

    monkeypatch.setattr(race_1_1, "train_command", fake_training("impatient"))
    monkeypatch.setattr(race_1_1, "load_policy", lambda path: None)
    monkeypatch.setattr(race_1_1, "evaluate", interrupted_evaluation)
    monkeypatch.setattr(
        sys, "argv", ["race_1_1.py", "--seeds", "0", "1", "--runs-dir", str(tmp_path)]
    )

    assert race_1_1.main() == status

    run = tmp_path / "fake_run"
    # One SIGINT only, though a second Ctrl-C came while training was writing its checkpoint.
    assert (run / "sigints").read_text().splitlines() == ["checkpoint written"]
    log = json.loads((run / "race.json").read_text())
    assert log["interrupted"] is True and log["first_clear"] is None
    summary = json.loads((tmp_path / "race_seeds_0_1.json").read_text())
    assert summary["interrupted"] is True
    assert [race["seed"] for race in summary["races"]] == [0]  # seed 1 never started


def test_the_first_clear_is_confirmed_on_fresh_seeds_after_training_stops(tmp_path, monkeypatch):
    calls = []

    def nine_of_ten(policy, *, episodes, seed, **kwargs):
        stopped = (tmp_path / "fake_run" / "sigints").exists()
        calls.append((episodes, seed, stopped))
        return {
            "clears": episodes * 9 // 10,
            "episodes": episodes,
            "clear_rate": 0.9,
            "mean_x": 3000.0,
            "max_x": 3161,
            "distinct_trajectories": episodes,
        }

    monkeypatch.setattr(race_1_1, "train_command", fake_training())
    monkeypatch.setattr(race_1_1, "load_policy", lambda path: None)
    monkeypatch.setattr(race_1_1, "evaluate", nine_of_ten)
    monkeypatch.setattr(sys, "argv", ["race_1_1.py", "--runs-dir", str(tmp_path)])

    assert race_1_1.main() == 0

    first = 10_000 + 250_000
    # The race's 10 episodes while training runs, then 50 on the next seeds once it stopped.
    assert calls == [(10, first, False), (50, first + 10, True)]
    log = json.loads((tmp_path / "fake_run" / "race.json").read_text())
    assert log["first_clear"]["clears"] == 9
    assert log["first_clear"]["confirmation"]["clears"] == 45
    assert log["first_clear"]["confirmation"]["seeds"] == [first + 10, first + 59]


def test_a_failed_evaluation_still_stops_training_and_keeps_the_log(tmp_path, monkeypatch):
    def broken_evaluation(*args, **kwargs):
        raise RuntimeError("the checkpoint does not load")

    monkeypatch.setattr(race_1_1, "train_command", fake_training())
    monkeypatch.setattr(race_1_1, "load_policy", lambda path: None)
    monkeypatch.setattr(race_1_1, "evaluate", broken_evaluation)
    monkeypatch.setattr(sys, "argv", ["race_1_1.py", "--runs-dir", str(tmp_path)])
    with pytest.raises(RuntimeError, match="does not load"):
        race_1_1.main()
    run = tmp_path / "fake_run"
    assert (run / "sigints").read_text().splitlines() == ["checkpoint written"]
    log = json.loads((run / "race.json").read_text())
    assert log["first_clear"] is None and log["training_failure"] is None


def test_clears_above_the_episodes_are_refused(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["race_1_1.py", "--episodes", "10", "--clears", "11"])
    with pytest.raises(SystemExit):
        race_1_1.main()
    assert "--clears 11 is more than --episodes 10" in capsys.readouterr().err
