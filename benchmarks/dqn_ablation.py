"""dqn-fast with one option switched at a time, on 1-1, the same frame budget and seed each.

    python benchmarks/dqn_ablation.py --frames 150000 --seed 0

Variants: the preset as it is (Double DQN, dueling head, 3-step returns, uniform replay,
one update per 4 agent steps), then with prioritised replay added, without the dueling
head, with 1-step returns, and with twice the replay ratio (one update per 2 steps). Each
trains in turn (never two at once: they would share the cores and their speeds would
mean nothing), then its last checkpoint plays `--episodes` greedy evaluation episodes
from the level's real start. Printed per variant: frames/s and updates/s of the whole
run, training episodes, the mean furthest x of the last 50 training episodes, the best x,
training flags, and the evaluation's clears and mean x. One seed and a short budget say
which options speed up the early part of learning, not which clears 1-1 first. The table
is also written as JSON to `--out`.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from mario_rl.agents import load_policy
from mario_rl.evaluate import evaluate
from mario_rl.presets import get_preset
from mario_rl.runs import RunConfig, load_checkpoint
from mario_rl.training import train

VARIANTS = {
    "dqn-fast": {},
    "+ prioritised replay": {"prioritized": True},
    "- dueling head": {"dueling": False},
    "1-step returns": {"n_step": 1},
    "replay ratio x2": {"learn_every": 2},
}
"""Variant name -> the DQNConfig fields it changes from the dqn-fast preset."""


EVAL_STUCK_STEPS = 200
"""Evaluation ends an episode after this many agent steps without a new best x (as the
race benchmark does)."""


def summarise(run_dir: Path, seconds: float, episodes: int, seed: int) -> dict:
    with (run_dir / "episodes.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    last = rows[-50:]
    checkpoint = load_checkpoint(run_dir)
    frames = int(checkpoint["counters"]["frames"])
    report = evaluate(
        load_policy(run_dir), episodes=episodes, seed=seed, max_stuck_steps=EVAL_STUCK_STEPS
    )
    return {
        "frames": frames,
        "minutes": round(seconds / 60, 2),
        "frames_per_s": round(frames / seconds, 1),
        "updates_per_s": round(int(checkpoint["counters"]["updates"]) / seconds, 1),
        "episodes": len(rows),
        "last50_mean_x": round(sum(int(r["max_x"]) for r in last) / max(len(last), 1)),
        "best_x": max((int(r["max_x"]) for r in rows), default=0),
        "train_flags": sum(int(r["flag"]) for r in rows),
        "eval_clears": f"{report['clears']}/{report['episodes']}",
        "eval_mean_x": round(report["mean_x"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=float, default=150_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", default="dqn_ablation.json")
    args = parser.parse_args()

    preset = get_preset("dqn-fast")
    results = {}
    header = (
        "| variant | frames | min | frames/s | updates/s | episodes | last-50 mean x "
        "| best x | train flags | eval clears | eval mean x |"
    )
    print(header + "\n|" + "---|" * header.count(" | ") + "---|", flush=True)
    with tempfile.TemporaryDirectory() as runs:
        for name in args.variants:
            agent = replace(preset.agent, **VARIANTS[name])
            run = RunConfig(
                seed=args.seed,
                frames=int(args.frames),
                device="cpu",
                runs_dir=runs,
                checkpoint_every=10**9,
                progress=False,
            )
            start = time.perf_counter()
            run_dir = train(run, preset.env, agent, preset="dqn-fast")
            seconds = time.perf_counter() - start
            results[name] = summarise(run_dir, seconds, args.episodes, args.seed)
            print(f"| {name} | " + " | ".join(str(v) for v in results[name].values()) + " |")
    Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
