"""How an episode ended, as one picture: frames from the end of a recorded episode, side by
side, oldest on the left.

A death map says where along x a level's failures end; this shows what happens there (the
level campaign's 1-3, docs/campaign.md). Record an evaluation episode first, then take its end:

    mario-rl record runs/campaign/levels/1-3/<run> --seed 0 --out episode.mp4
    python benchmarks/campaign/episode_strip.py episode.mp4 --out end.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import imageio.v2 as imageio
import numpy as np


def strip(frames: list[np.ndarray], last: int, count: int) -> np.ndarray:
    """`count` frames evenly spaced over the last `last` of `frames`, the final one
    included, side by side."""
    if not frames:
        raise ValueError("the video has no frames")
    start = max(0, len(frames) - last)
    # From the final frame back, so that a strip of one is the final frame.
    picks = np.linspace(len(frames) - 1, start, num=min(count, len(frames) - start))[::-1]
    return np.concatenate([frames[round(i)] for i in picks], axis=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path, help="a video `mario-rl record` wrote")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument(
        "--last", type=int, default=30, help="how many final frames to pick from (default 30)"
    )
    parser.add_argument("--count", type=int, default=5, help="frames in the strip (default 5)")
    args = parser.parse_args(argv)
    if args.last < 1 or args.count < 1:
        parser.error("--last and --count: expected at least 1")
    with imageio.get_reader(args.video) as reader:
        # Not list(reader): the ffmpeg reader's length is inf, which list() takes as a size.
        frames = [frame for frame in reader]
    picture = strip(frames, args.last, args.count)
    imageio.imwrite(args.out, picture)
    shown = picture.shape[1] // frames[0].shape[1]
    print(f"wrote {args.out}: {shown} of the last {min(args.last, len(frames))} frames")


if __name__ == "__main__":
    main()
