"""How a training run progresses toward the flag: in training, and checkpoint by checkpoint.

    python benchmarks/curiosity_progress.py RUN_DIR [--episodes 10] [--sticky 0.25]

Written for issue 19's curiosity-only run (`mario-rl train --preset curiosity-ppo`), and
good for any run with checkpoints. From the run's episodes.csv: the frames and training
wall-clock to the first flag in training, and per million frames the furthest x, the
mean of the episodes' furthest x, the share of episodes that ended in a death (what the
death-pairing ablation, `--terminal-next-obs next-start`, should raise if surprisal pays
for dying) and their mean length; from its TensorBoard events, the policy's mean entropy
(against a uniform policy's, the log of the number of actions) and its KL per update, which
say how far the policy has moved from acting at random. Then each checkpoint is evaluated
as `mario-rl eval` does (greedy, or sampling with `--sample`; random no-op starts, sticky actions
`--sticky`, `--episodes` episodes, no blind-replay control), and the first checkpoint
with at least half of them cleared is named. Evaluations are kept in
RUN_DIR/eval/progress.json (saved after each), so a rerun on a run that has gone on only
evaluates its new checkpoints, and checkpoints deleted by `--keep-checkpoints` since stay
in the report.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mario_rl.agents import load_policy
from mario_rl.env.actions import action_set
from mario_rl.evaluate import evaluate
from mario_rl.runs import list_checkpoints, load_checkpoint, write_text_atomic

MILLION = 1_000_000


def reached_the_flag(row: dict[str, str]) -> bool:
    return row["flag"] in ("1", "True")


def ended_in_death(row: dict[str, str]) -> bool:
    """An episode that ended short of the flag with time on the clock: a death in the envs
    of `curiosity-ppo`, which have no other cut (the clock running out leaves time 0); with
    a preset that truncates stuck episodes, those count here too."""
    return not reached_the_flag(row) and int(row["time_left"]) > 0


def training_progress(run_dir: Path) -> dict[str, Any]:
    """First flag and furthest x per million frames, from the run's episodes.csv."""
    with (run_dir / "episodes.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    first_flag = next(filter(reached_the_flag, rows), None)
    bins: dict[int, list[dict[str, str]]] = {}
    for row in rows:
        bins.setdefault(int(row["frames"]) // MILLION, []).append(row)
    return {
        "episodes": len(rows),
        "frames": int(rows[-1]["frames"]) if rows else 0,
        "wall_s": float(rows[-1]["wall_s"]) if rows else 0.0,
        "flags": sum(map(reached_the_flag, rows)),
        "first_flag": None
        if first_flag is None
        else {
            "frames": int(first_flag["frames"]),
            "wall_s": float(first_flag["wall_s"]),
            "episode": int(first_flag["episode"]),
        },
        "per_million": [
            {
                "million": million,
                "episodes": len(episodes),
                "best_x": max(int(row["max_x"]) for row in episodes),
                "mean_x": sum(int(row["max_x"]) for row in episodes) / len(episodes),
                "died": sum(ended_in_death(row) for row in episodes) / len(episodes),
                "mean_length": sum(int(row["length"]) for row in episodes) / len(episodes),
            }
            for million, episodes in sorted(bins.items())
        ],
    }


def policy_per_million(run_dir: Path) -> dict[int, dict[str, float]]:
    """Per million frames, the mean of the logged policy entropy (`entropy`) and KL per
    update (`kl`); a run without TensorBoard events (restored from a snapshot) gives {}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    logged = events.Tags()["scalars"]
    means: dict[int, dict[str, float]] = {}
    for name, tag in (("entropy", "losses/entropy"), ("kl", "losses/approx_kl")):
        if tag not in logged:
            continue
        bins: dict[int, list[float]] = {}
        for event in events.Scalars(tag):
            bins.setdefault(event.step // MILLION, []).append(event.value)
        for million, values in bins.items():
            means.setdefault(million, {})[name] = sum(values) / len(values)
    return means


def checkpoint_evaluations(
    run_dir: Path,
    episodes: int,
    sticky: float,
    sample: bool,
    workers: int,
    kept: dict[str, Any],
    save: Callable[[], None],
) -> list[dict[str, Any]]:
    """One evaluation per checkpoint, by frames: those in `kept` made with the same settings
    (checkpoints rotated out since included), then each checkpoint not yet evaluated,
    `save()` called after each so a stopped pass keeps what it made."""
    for path in list_checkpoints(run_dir / "checkpoints"):
        key = f"{path.name} episodes={episodes} sticky={sticky}" + (" sample" if sample else "")
        if key in kept:
            continue
        report = evaluate(
            load_policy(path), episodes=episodes, sticky=sticky, sample=sample, workers=workers
        )
        kept[key] = {
            "checkpoint": path.name,
            "frames": int(load_checkpoint(path)["counters"]["frames"]),
            "episodes": report["episodes"],
            "sticky": sticky,
            "sample": sample,
            "clears": report["clears"],
            "mean_max_x": report["mean_x"],
        }
        save()
    settings = (episodes, sticky, sample)
    same = [e for e in kept.values() if (e["episodes"], e["sticky"], e["sample"]) == settings]
    return sorted(same, key=lambda entry: entry["frames"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run directory")
    parser.add_argument("--episodes", type=int, default=10, help="per checkpoint (default 10)")
    parser.add_argument("--sticky", type=float, default=0.25, help="default 0.25")
    parser.add_argument(
        "--sample",
        action="store_true",
        help="draw each action from the policy, as in training (default: greedy)",
    )
    parser.add_argument("--workers", type=int, default=1, help="evaluation processes")
    parser.add_argument("--no-eval", action="store_true", help="training numbers only")
    args = parser.parse_args()
    if not (args.run / "episodes.csv").is_file():
        parser.error(f"{args.run}: expected a run directory with an episodes.csv")
    if args.episodes < 1:
        parser.error(f"--episodes: expected a positive integer, got {args.episodes}")

    training = training_progress(args.run)
    actions = json.loads((args.run / "config.json").read_text())["env"]["actions"]
    uniform_entropy = math.log(len(action_set(actions)))
    for million, policy in policy_per_million(args.run).items():
        for row in training["per_million"]:
            if row["million"] == million:
                row |= policy
    first = training["first_flag"]
    print(
        f"{args.run}: {training['episodes']:,} episodes, {training['frames']:,} frames, "
        f"{training['wall_s'] / 3600:.2f} h of training, {training['flags']} flags; first "
        + (
            "flag: none yet"
            if first is None
            else f"flag at {first['frames']:,} frames, {first['wall_s'] / 3600:.2f} h "
            f"(episode {first['episode']:,})"
        )
    )
    for row in training["per_million"]:
        print(
            f"  frames {row['million']}M-{row['million'] + 1}M: {row['episodes']:,} episodes, "
            f"furthest x {row['best_x']}, mean furthest x {row['mean_x']:.0f}, "
            f"{row['died']:.0%} ended in a death, mean length {row['mean_length']:.0f} steps"
            + (
                f"; policy entropy {row['entropy']:.2f} ({row['entropy'] / uniform_entropy:.0%}"
                f" of uniform's {uniform_entropy:.2f}), KL per update {row['kl']:.2g}"
                if "entropy" in row and "kl" in row
                else ""
            )
        )
    out = args.run / "eval" / "progress.json"
    kept = json.loads(out.read_text())["kept"] if out.is_file() else {}
    evaluations: list[dict[str, Any]] = []

    def save() -> None:
        out.parent.mkdir(exist_ok=True)
        report = {"training": training, "evaluations": evaluations, "kept": kept}
        write_text_atomic(out, json.dumps(report, indent=2) + "\n")

    if not args.no_eval:
        evaluations = checkpoint_evaluations(
            args.run, args.episodes, args.sticky, args.sample, args.workers, kept, save
        )
        for row in evaluations:
            print(
                f"  checkpoint at {row['frames']:,} frames: {row['clears']} of "
                f"{row['episodes']} cleared ({'sampling' if args.sample else 'greedy'}, sticky "
                f"{args.sticky}), mean furthest x "
                f"{row['mean_max_x']:.0f}"
            )
        half = next((r for r in evaluations if 2 * r["clears"] >= r["episodes"]), None)
        print(
            "first checkpoint with at least half cleared: "
            + ("none yet" if half is None else f"{half['frames']:,} frames")
        )
    save()
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
