"""The CS229 agent's training speed against the raw emulator on 2 processes, in one run.

    python benchmarks/bench_cs229_speed.py --frames 60000 --rounds 2

Each round measures the raw emulator (`_frame_advance` with random buttons) on two
processes, then trains the CS229 agent (the report's settings, no evaluations) for
`--frames` frames with 1 env in this process and with 2 envs in worker processes
(`CS229Config.num_envs`; `--num-envs` picks other counts), each speed read from the run's
episodes.csv (frames over wall-clock between its first and last episode, so start-up is
left out). Prints each speed as a share of the mean raw rate (the issue's goal: 0.7 on
2 cores). Before/after comparisons run another checkout's package in turn with this one:

    PYTHONPATH=/tmp/before/src python benchmarks/bench_cs229_speed.py --num-envs 2
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench_train import two_process_raw_fps

from mario_rl.agents.cs229 import CS229Config
from mario_rl.env.pipeline import EnvConfig
from mario_rl.runs import RunConfig
from mario_rl.training import train


def training_fps(level: str, frames: int, num_envs: int, runs: Path) -> float:
    config = replace(CS229Config(), eval_episodes=0, num_envs=num_envs)
    run = RunConfig(seed=0, frames=frames, runs_dir=str(runs), progress=False)
    run_dir = train(run, EnvConfig(level=level), config)
    with (run_dir / "episodes.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    first, last = rows[0], rows[-1]
    return (int(last["frames"]) - int(first["frames"])) / (
        float(last["wall_s"]) - float(first["wall_s"])
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--level", default="1-1")
    parser.add_argument("--frames", type=int, default=60_000)
    parser.add_argument("--raw-frames", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--num-envs", type=int, nargs="+", default=[1, 2], help="env counts to train with"
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for round_index in range(args.rounds):
        raw = two_process_raw_fps(args.level, args.raw_frames)
        with tempfile.TemporaryDirectory() as scratch:
            speeds = {
                n: training_fps(args.level, args.frames, n, Path(scratch) / str(n))
                for n in args.num_envs
            }
        raw = (raw + two_process_raw_fps(args.level, args.raw_frames)) / 2
        each = ", ".join(
            f"{n} env{'s' if n > 1 else ''} {fps:,.0f} ({fps / raw:.2f} of raw)"
            for n, fps in speeds.items()
        )
        print(f"round {round_index + 1}: raw emulator on 2 processes {raw:,.0f} frames/s; {each}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
