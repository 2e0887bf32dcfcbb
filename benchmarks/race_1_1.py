"""The race: frames and wall-clock until a preset first clears 1-1 (>= 9 of 10 evaluations
under sticky actions).

    python benchmarks/race_1_1.py --preset ppo-fast --seed 0 --frames 2e6 --eval-every 250000

Trains with `mario-rl train` in a child process (fixed seed, a checkpoint every
`--eval-every` frames), and evaluates each checkpoint as it appears: `--episodes` greedy
episodes from the level's real start after 0..30 random no-op frames under sticky actions
(`--sticky`, default 0.25 per frame), each seeded differently, no snapshot starts, no
life-loss ending (`mario_rl.evaluate`). It prints one
line per evaluation (frames, training wall-clock when the checkpoint was written, clears,
mean and best x) and, at the first evaluation with >= `--clears` clears, the frames and
wall-clock to it; training then stops unless `--keep-going`, and that checkpoint plays
`--confirm` (default 50) more episodes on fresh seeds: a 9 of 10 also passes agents that
clear only 75%, and the confirmation, reported beside the race but not judging it, says
which it was. `--sample` evaluates the
policy acting by sampling its action distribution (PPO) instead of greedily; `--epsilon E`
acts at random with probability E (DQN; the Nature DQN was evaluated at 0.05). `--resume
RUN_DIR` continues an earlier race run up to the new `--frames`, on the run's own level
and settings (its wall-clock restarts at 0, so add the first part's); its log goes to
`race_resumed_<frames>.json` beside the first part's `race.json`. Evaluation runs beside
training on the same cores, so it slows training somewhat: the wall-clock is an upper bound.
The full log is written to `<run dir>/race.json`.

Ctrl-C (or `kill PID`, also for a race started in the background) stops the race cleanly:
training writes its checkpoint (`--resume` continues it), the evaluations so far are
written with `"interrupted": true`, and with `--seeds` the seeds raced so far are
summarised; the exit status is 130 (143 for SIGTERM).

`--seeds 0 1 2` races each seed in turn (one at a time, so each has the cores to itself)
and prints the median and range over seeds of the frames and wall-clock to the first
clear; a seed that does not clear within `--frames` is reported as not reached, and
counts as slower than every seed that did. The summary goes to
`<runs dir>/race_seeds_0_1_2.json`:

    python benchmarks/race_1_1.py --preset ppo-fast --seeds 0 1 2 --frames 4e6
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from mario_rl.agents import load_policy
from mario_rl.cli.args import (
    add_sticky_argument,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from mario_rl.evaluate import evaluate
from mario_rl.runs import list_checkpoints
from mario_rl.stopping import Terminated, stop_signals_deferred, stop_signals_interrupt

POLL_SECONDS = 2.0
"""How often the race looks for a new checkpoint."""


class Training:
    """The `mario-rl train` child process, in its own session: a Ctrl-C in the terminal
    reaches only the race, which stops training with exactly one SIGINT however often it
    asks (a second one would cut short the checkpoint training writes on the first)."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, start_new_session=True)
        self.stopped_by_race = False

    def finished(self) -> bool:
        return self.process.poll() is not None

    def stop(self) -> None:
        """Stop training as Ctrl-C does: it checkpoints and closes its env workers cleanly
        (SIGTERM would leave each worker printing a broken-pipe traceback)."""
        if not self.stopped_by_race and not self.finished():
            self.process.send_signal(signal.SIGINT)
            self.stopped_by_race = True
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def failure(self) -> str | None:
        """Why training ended, if it failed on its own (not stopped by the race)."""
        code = self.process.returncode
        if code in (None, 0) or self.stopped_by_race:
            return None
        return f"training exited with status {code} before its budget was spent"


def frames_of(checkpoint: Path) -> int:
    return int(checkpoint.stem.removeprefix("frames_"))


def first_seed(checkpoint: Path) -> int:
    """The first evaluation seed of a checkpoint: each checkpoint plays its own starts."""
    return 10_000 + frames_of(checkpoint)


def evaluate_checkpoint(
    args: argparse.Namespace, checkpoint: Path, episodes: int, seed: int
) -> dict:
    return evaluate(
        load_policy(checkpoint),
        level=args.level,
        episodes=episodes,
        noop_max=30,
        seed=seed,
        max_stuck_steps=args.max_stuck_steps,
        sample=args.sample,
        epsilon=args.epsilon,
        sticky=args.sticky,
    )


def confirm(args: argparse.Namespace, checkpoint: Path) -> dict:
    """The first clearing checkpoint on `--confirm` more episodes, seeds after the race's:
    a 9-of-10 judgement also passes agents that clear 75%, and this says which it was."""
    seed = first_seed(checkpoint) + args.episodes
    report = evaluate_checkpoint(args, checkpoint, args.confirm, seed)
    confirmation = {
        "episodes": report["episodes"],
        "clears": report["clears"],
        "clear_rate": report["clear_rate"],
        "seeds": [seed, seed + report["episodes"] - 1],
        "distinct_trajectories": report["distinct_trajectories"],
    }
    print(
        f"confirmation of that checkpoint: cleared {report['clears']}/{report['episodes']} "
        f"more episodes (seeds {seed}..{seed + report['episodes'] - 1})",
        flush=True,
    )
    return confirmation


def train_command(args: argparse.Namespace, seed: int, runs_dir: Path) -> list[str]:
    """The `mario-rl train` command line of one race (a new run, or `--resume`'s)."""
    if args.resume:
        # The run's own config fixes everything else, the checkpoint interval included.
        return [
            sys.executable, "-m", "mario_rl", "train", "--resume", str(args.resume),
            "--frames", str(int(args.frames)), "--quiet", *args.train_args,
        ]  # fmt: skip
    return [
        sys.executable, "-m", "mario_rl", "train", "--preset", args.preset,
        "--level", args.level, "--seed", str(seed), "--frames", str(int(args.frames)),
        "--checkpoint-every", str(args.eval_every), "--keep-checkpoints", "1000",
        "--runs-dir", str(runs_dir), "--quiet", *args.train_args,
    ]  # fmt: skip


def race(args: argparse.Namespace, seed: int) -> dict:
    """One race: train seed `seed`, evaluate each checkpoint, stop at the first clear.

    A KeyboardInterrupt (Ctrl-C, or SIGTERM/SIGHUP under `stop_signals_interrupt`) stops
    training with its checkpoint, writes the log so far marked `interrupted`, and is raised
    again with the race's result as its argument. A failed evaluation also stops training
    and writes the log before it is raised; training that fails on its own is reported as
    such, not as "not cleared".
    """
    runs_dir = Path(args.runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    before = set(runs_dir.iterdir())
    command = train_command(args, seed, runs_dir)
    run_dir: Path | None = None
    evaluated: set[Path] = set()
    log_name = "race.json"
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.json").is_file():
            raise SystemExit(f"--resume {run_dir}: not a run directory (no config.json)")
        args.level = json.loads((run_dir / "config.json").read_text())["env"]["level"]
        evaluated = set(list_checkpoints(run_dir / "checkpoints"))
        log_name = f"race_resumed_{int(args.frames)}.json"
    acting = "sampled" if args.sample else "greedy"
    if args.epsilon:
        acting += f", epsilon {args.epsilon}"
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    training = Training(command)
    log: list[dict] = []
    first_clear: dict | None = None
    interrupted: type[KeyboardInterrupt] | None = None
    error: Exception | None = None
    try:
        while True:
            finished = training.finished()
            if run_dir is None:
                new = sorted(set(runs_dir.iterdir()) - before)
                run_dir = new[0] if new else None
            waiting = [] if run_dir is None else list_checkpoints(run_dir / "checkpoints")
            waiting = [path for path in waiting if path not in evaluated]
            if not waiting:
                if finished:
                    break
                time.sleep(POLL_SECONDS)
                continue
            checkpoint = waiting[0]
            evaluated.add(checkpoint)
            wall = checkpoint.stat().st_mtime - (time.time() - (time.perf_counter() - start))
            report = evaluate_checkpoint(args, checkpoint, args.episodes, first_seed(checkpoint))
            entry = {
                "frames": frames_of(checkpoint),
                "wall_minutes": round(wall / 60, 2),
                "clears": report["clears"],
                "episodes": report["episodes"],
                "mean_x": round(report["mean_x"]),
                "max_x": report["max_x"],
                "acting": acting,
                "sticky": args.sticky,
                "distinct_trajectories": report["distinct_trajectories"],
            }
            log.append(entry)
            print(
                f"frames {entry['frames']:>9,}  train wall {entry['wall_minutes']:6.2f} min  "
                f"cleared {entry['clears']}/{entry['episodes']}  mean x {entry['mean_x']}  "
                f"max x {entry['max_x']}",
                flush=True,
            )
            if first_clear is None and report["clears"] >= args.clears:
                first_clear = entry
                print(
                    f"FIRST CLEAR: {entry['frames']:,} frames, {entry['wall_minutes']:.2f} min "
                    f"of training wall-clock ({entry['clears']}/{entry['episodes']})",
                    flush=True,
                )
                if not args.keep_going:
                    training.stop()
                if args.confirm:
                    first_clear["confirmation"] = confirm(args, checkpoint)
                if not args.keep_going:
                    break
    except KeyboardInterrupt as stop:
        interrupted = type(stop)
        print("race interrupted: stopping training (it writes its checkpoint)", flush=True)
    except Exception as failure:  # an evaluation failed: still stop training, keep the log
        error = failure
    with stop_signals_deferred() as late:  # a second Ctrl-C must not cut this short
        training.stop()
        result = {
            "seed": seed,
            "run_dir": str(run_dir),
            "first_clear": first_clear,
            "interrupted": interrupted is not None or bool(late),
            "training_failure": training.failure(),
            "evaluations": log,
        }
        if first_clear is None:
            best = max(log, key=lambda e: (e["clears"], e["max_x"]), default=None)
            ending = result["training_failure"] or "NOT CLEARED within the budget"
            if result["interrupted"]:
                ending = "interrupted before a clear"
            print(f"{ending}; best evaluation: {best}", flush=True)
        if run_dir is not None:
            saved = {"command": command, **{k: v for k, v in result.items() if k != "seed"}}
            (run_dir / log_name).write_text(json.dumps(saved, indent=2) + "\n")
            print(f"saved {run_dir / log_name}", flush=True)
    if error is not None:
        raise error
    if late and interrupted is None:
        interrupted = KeyboardInterrupt if late[0] == signal.SIGINT else Terminated
    if interrupted is not None:
        raise interrupted(result)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="ppo-fast")
    parser.add_argument("--level", default="1-1")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument(
        "--seeds",
        type=non_negative_int,
        nargs="+",
        default=None,
        help="race these seeds one after another (e.g. 0 1 2) and report the median and "
        "spread of frames and wall-clock to the first clear; overrides --seed",
    )
    parser.add_argument("--frames", type=positive_float, default=2e6, help="training frame budget")
    parser.add_argument("--eval-every", type=positive_int, default=250_000, help="frames")
    parser.add_argument("--episodes", type=positive_int, default=10)
    parser.add_argument(
        "--clears", type=positive_int, default=9, help="clears that count as cleared"
    )
    parser.add_argument(
        "--confirm",
        type=non_negative_int,
        default=50,
        help="after the first clear, that checkpoint plays this many more episodes on fresh "
        "seeds, reported beside it (0: skip); once training has stopped, or beside it (and "
        "slowing it) with --keep-going",
    )
    parser.add_argument(
        "--max-stuck-steps",
        type=positive_int,
        default=200,
        help="evaluation ends an episode after N agent steps without a new best x",
    )
    parser.add_argument("--runs-dir", default="runs/race")
    parser.add_argument("--keep-going", action="store_true", help="train on after a clear")
    parser.add_argument(
        "--sample", action="store_true", help="evaluate by sampling the policy (PPO), not greedy"
    )
    parser.add_argument(
        "--epsilon",
        type=probability,
        default=0.0,
        help="evaluate epsilon-greedy with this epsilon (DQN; the Nature DQN evaluated at 0.05)",
    )
    add_sticky_argument(parser)
    parser.add_argument("--resume", default=None, help="continue this race run directory")
    parser.add_argument("train_args", nargs="*", help="more `mario-rl train` flags, after --")
    args = parser.parse_args()
    if args.clears > args.episodes:
        parser.error(f"--clears {args.clears} is more than --episodes {args.episodes}")
    if args.resume and args.seeds:
        parser.error("--resume continues one race; drop --seeds")
    seeds = args.seeds or [args.seed]
    races: list[dict] = []
    stopped: KeyboardInterrupt | None = None
    with stop_signals_interrupt():
        try:
            for seed in seeds:
                races.append(race(args, seed))
        except KeyboardInterrupt as stop_:
            stopped = stop_
            if stop_.args:  # the interrupted race's partial result
                races.append(stop_.args[0])
    if len(seeds) > 1 and races:
        summary = seeds_summary(races, args.frames)
        if stopped is not None:
            summary["interrupted"] = True
            print(f"interrupted after {len(races)} of {len(seeds)} seeds", flush=True)
        print_seeds_summary(summary)
        out = Path(args.runs_dir) / f"race_seeds_{'_'.join(map(str, seeds))}.json"
        out.write_text(json.dumps({**summary, "races": races}, indent=2) + "\n")
        print(f"saved {out}", flush=True)
    if stopped is not None:
        return 143 if isinstance(stopped, Terminated) else 130
    return 0


def seeds_summary(races: list[dict], budget: float) -> dict:
    """Median and spread over seeds of frames and wall-clock to the first clear.

    A seed that did not clear within the budget counts as slower than every seed that did
    (its time is "more than the budget"), so the median is "not reached" when half or more
    of the seeds did not clear.
    """
    cleared = [r["first_clear"] for r in races if r["first_clear"]]
    frames = sorted(c["frames"] for c in cleared)
    minutes = sorted(c["wall_minutes"] for c in cleared)
    middle = len(races) // 2  # the median's index among all seeds, for an odd count

    def median(values: list[float]) -> float | None:
        if len(races) % 2 == 1:
            return values[middle] if middle < len(values) else None
        if middle < len(values):
            return (values[middle - 1] + values[middle]) / 2
        return None

    confirmations = [(r["first_clear"] or {}).get("confirmation") for r in races]
    return {
        "seeds": [r["seed"] for r in races],
        "confirmed_clear_rates": [c and c["clear_rate"] for c in confirmations],
        "frame_budget": int(budget),
        "cleared_seeds": len(cleared),
        "median_frames": median(frames),
        "median_wall_minutes": median(minutes),
        "frames_range": [frames[0], frames[-1]] if frames else None,
        "wall_minutes_range": [minutes[0], minutes[-1]] if minutes else None,
    }


def print_seeds_summary(summary: dict) -> None:
    seeds = len(summary["seeds"])
    print(f"{summary['cleared_seeds']} of {seeds} seeds cleared", flush=True)
    rates = [f"{r:.0%}" if r is not None else "-" for r in summary["confirmed_clear_rates"]]
    print(f"first clearing checkpoints on their confirmation episodes: {', '.join(rates)}")
    if summary["median_frames"] is None:
        print(f"median: NOT REACHED within {summary['frame_budget']:,} frames", flush=True)
        return
    low, high = summary["frames_range"]
    fast, slow = summary["wall_minutes_range"]
    print(
        f"median {summary['median_frames']:,.0f} frames (range {low:,}..{high:,}"
        f"{', and seeds not cleared' if summary['cleared_seeds'] < seeds else ''}), "
        f"median {summary['median_wall_minutes']:.1f} min of training wall-clock "
        f"(range {fast:.1f}..{slow:.1f})",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
