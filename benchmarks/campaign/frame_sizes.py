"""What a policy sees of the screen at two frame sizes, shortly before one of its deaths.

Plays one evaluation episode of a checkpoint (greedy, with the sticky actions, no-op range
and stuck cut of its `eval.json`, on one of that report's seeds, so the episode is the
report's own) to its end, then draws, for each of `--back` steps before that end, the
screen beside what the pipeline keeps of it at each of `--sizes`: the emulator's own
grayscale screen, area-resized as `ResizeObservation` does (the step's max over its last
two frames and the last-action strip left out), scaled back up with no smoothing. Writes
one PNG, a row per step:

    python benchmarks/campaign/frame_sizes.py models/8-3 --seed 10008 --back 6 1 \\
        --out benchmarks/campaign/frame_sizes/8-3.png

It prints where and how the episode ended beside the report's row for the seed, and says
so when they differ (greedy play can flip at a near tie under another torch thread count
than the report's), so a figure that is not the report's episode is never taken for it.
Reports of sampled or epsilon-greedy play are refused: their draws are not replayed here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from mario_rl.agents import load_policy
from mario_rl.env.pipeline import make_env
from mario_rl.evaluate import eval_env_config

Screen = tuple[np.ndarray, np.ndarray]
"""The screen in colour (240x256x3) and in the emulator's grayscale (240x256)."""


def play_to_the_end(
    bundle: Path, seed: int
) -> tuple[list[Screen], dict[str, object], dict[str, object]]:
    """The screens of the report's episode on `seed`, its last info, and the report's row."""
    report = json.loads((bundle / "eval.json").read_text())
    row = next((e for e in report["per_episode"] if e["seed"] == seed), None)
    if row is None:
        raise SystemExit(f"seed {seed} is not one of {bundle / 'eval.json'}'s episodes")
    if report.get("acting") != "greedy" or report.get("epsilon"):
        raise SystemExit(
            f"{bundle / 'eval.json'} played {report.get('acting')} with epsilon "
            f"{report.get('epsilon')}: only greedy episodes are replayed here"
        )
    policy = load_policy(bundle / "model.pt")
    config = eval_env_config(
        policy.env_config,
        report["level"],
        report["noop_max"],
        report["max_stuck_steps"],
        report["sticky_probability"],
    )
    env = make_env(config)
    try:
        mario = env.unwrapped
        obs, info = env.reset(seed=seed)
        screens = [(mario.screen_rgb(), mario.emulator.observation("grayscale"))]
        while True:
            obs, _, terminated, truncated, info = env.step(int(policy.act(obs[None])[0]))
            screens.append((mario.screen_rgb(), mario.emulator.observation("grayscale")))
            if terminated or truncated:
                break
    finally:
        env.close()
    return screens, info, row


def shrunk(gray: np.ndarray, size: int) -> np.ndarray:
    """The grayscale screen as a `size` x `size` frame, area-resized as the pipeline does."""
    return cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)


def seen_at(gray: np.ndarray, size: int) -> np.ndarray:
    """`shrunk(gray, size)` blown back up to the screen's size with no smoothing, as RGB."""
    height, width = gray.shape
    big = cv2.resize(shrunk(gray, size), (width, height), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2RGB)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bundle", type=Path, help="a folder with model.pt and eval.json")
    parser.add_argument("--seed", type=int, required=True, help="one of eval.json's seeds")
    parser.add_argument(
        "--back", type=int, nargs="+", default=[6, 1], help="steps before the end, one row each"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[42, 84])
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    if min(args.back) < 0:
        parser.error(f"--back: expected steps before the end (0 or more), got {min(args.back)}")
    if min(args.sizes) < 1:
        parser.error(f"--sizes: expected frame sizes of 1 pixel or more, got {min(args.sizes)}")
    screens, info, row = play_to_the_end(args.bundle, args.seed)
    ended = (info["x_pos"], info.get("death"))
    print(
        f"seed {args.seed}: ended at x {ended[0]} ({ended[1] or 'no death'}) after "
        f"{len(screens) - 1} steps (the report: x {row['end_x']}, {row['ended']}, "
        f"{row.get('death')})"
    )
    if ended != (row["end_x"], row.get("death")):
        print("NOT the report's episode: the figure shows another ending than eval.json's")
    if max(args.back) >= len(screens):
        raise SystemExit(f"--back: the episode has only {len(screens) - 1} steps")
    rows = [
        np.concatenate([rgb, *(seen_at(gray, size) for size in args.sizes)], axis=1)
        for rgb, gray in (screens[-1 - back] for back in args.back)
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
