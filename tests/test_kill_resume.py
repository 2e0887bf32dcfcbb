"""kill -9 of `mario-rl train` at three moments, each followed by `--resume`: at most one
checkpoint interval is lost, and the run ends as one consistent run directory."""

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from mario_rl.cli.main import main
from mario_rl.runs import list_checkpoints, load_checkpoint

EVERY = 512
"""Frames between checkpoints."""
ROLLOUT = 2 * 32 * 4
"""Frames of one PPO rollout (2 envs x 32 steps x 4 frames): checkpoints fall on updates."""
FRAMES = 2_560
"""Five intervals: each killed piece adds about one, so the last piece has some to train."""
TRAIN = [
    sys.executable, "-m", "mario_rl", "train", "--preset", "ppo-fast", "--num-envs", "2",
    "--num-steps", "32", "--num-minibatches", "2", "--num-epochs", "1",
    "--no-progress-steps", "10", "--checkpoint-every", str(EVERY), "--keep-checkpoints", "3",
]  # fmt: skip
DEADLINE_S = 240


def wait_for(condition, process: subprocess.Popen, what: str) -> None:
    """Poll until `condition()`; fail if the trainer exits first or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert process.poll() is None, f"the trainer exited ({process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {DEADLINE_S} s"
        time.sleep(0.05)


def logged_frames(run_dir: Path) -> list[int]:
    with (run_dir / "episodes.csv").open(newline="") as file:
        return [int(row["frames"]) for row in csv.DictReader(file)]


def newest_frames(run_dir: Path) -> int:
    kept = list_checkpoints(run_dir / "checkpoints")
    return int(kept[-1].stem.split("_")[1]) if kept else 0


def test_kill_9_three_times_then_resume_loses_at_most_one_interval(tmp_path):
    runs = tmp_path / "runs"
    rng = random.Random(0)
    command = [*TRAIN, "--frames", str(FRAMES), "--seed", "0", "--runs-dir", str(runs)]
    for kill in range(3):
        # Its own process group: the kill takes the trainer and its env workers at once.
        process = subprocess.Popen(
            [*command, "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            if kill == 0:
                wait_for(lambda: runs.is_dir() and any(runs.iterdir()), process, "run directory")
                (run_dir,) = runs.iterdir()
                # A resumed run takes everything from its config.json.
                command = [sys.executable, "-m", "mario_rl", "train", "--resume", str(run_dir)]
            start = newest_frames(run_dir)
            # A moment between this piece's first new checkpoint and a little after it.
            wait_for(lambda d=run_dir, s=start: newest_frames(d) > s, process, "new checkpoint")
            time.sleep(rng.uniform(0.0, 0.5))
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        progress = max(logged_frames(run_dir), default=0)
        kept = newest_frames(run_dir)
        # What the next piece starts from is at most one interval (and one update) behind
        # the furthest episode the killed piece had logged.
        assert progress - kept <= EVERY + ROLLOUT, (progress, kept)
        assert load_checkpoint(run_dir)["counters"]["frames"] == kept

    # The last piece, never killed, runs in this process: the same command without another
    # interpreter's start-up.
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    assert load_checkpoint(run_dir)["counters"]["frames"] >= FRAMES
    frames = logged_frames(run_dir)
    assert frames == sorted(frames) and frames[-1] <= load_checkpoint(run_dir)["counters"]["frames"]
    with (run_dir / "episodes.csv").open(newline="") as file:
        episodes = [int(row["episode"]) for row in csv.DictReader(file)]
    assert episodes == list(range(1, len(episodes) + 1))
    assert not list(run_dir.rglob("*.tmp"))


def test_kill_term_of_a_background_run_saves_a_checkpoint_first(tmp_path):
    runs = tmp_path / "runs"
    command = [*TRAIN, "--frames", "1000000", "--seed", "0", "--runs-dir", str(runs), "--quiet"]
    # As `nohup mario-rl train ... &` starts it: SIGINT ignored, from its own session.
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        wait_for(lambda: runs.is_dir() and any(runs.iterdir()), process, "run directory")
        (run_dir,) = runs.iterdir()
        wait_for(lambda: newest_frames(run_dir) > 0, process, "first checkpoint")
        first = newest_frames(run_dir)
        # Episodes logged past it: at least one more update has been learned since.
        wait_for(
            lambda: max(logged_frames(run_dir), default=0) > first + ROLLOUT,
            process,
            "episodes past the checkpoint",
        )
        process.terminate()  # SIGTERM to the trainer alone, as `kill PID` sends it
        _, err = process.communicate(timeout=DEADLINE_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 143 and err.decode().strip().endswith("terminated")
    # The checkpoint written on the way out is newer than the scheduled one.
    assert newest_frames(run_dir) > first
    assert load_checkpoint(run_dir)["counters"]["frames"] == newest_frames(run_dir)
