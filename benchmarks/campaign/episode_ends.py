"""Where a run's training episodes ended: their furthest x in bands, over a frame window.

Reads `episodes.csv` of each run given (a run directory) and counts the episodes that
ended within `--from`..`--to` training frames by the band their furthest x fell in, with the
share that reached the flag: a quick look at whether training still ends where the
checks' death map does (a stall under 4-2's ledge shows as a band at x 1200-1299).
Only episodes from the level's real start are there (the runner leaves snapshot and death
starts out of `episodes.csv`), though under training's sampled actions, not evaluation's.

    python benchmarks/campaign/episode_ends.py runs/campaign/levels/4-2/<run> --from 1e6 --to 2e6
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path


def episode_ends(
    run_dir: Path, start: float, stop: float, band: int
) -> tuple[Counter[int], int, int]:
    """Episodes ended in [start, stop) frames, counted by furthest-x band; their number and
    how many reached the flag."""
    with (run_dir / "episodes.csv").open() as rows:
        ended = [row for row in csv.DictReader(rows) if start <= int(row["frames"]) < stop]
    bands = Counter(int(row["max_x"]) // band * band for row in ended)
    return bands, len(ended), sum(int(row["flag"]) for row in ended)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("--from", dest="start", type=float, default=0.0, help="frames")
    parser.add_argument("--to", dest="stop", type=float, default=float("inf"), help="frames")
    parser.add_argument("--band", type=int, default=100, help="x band width in pixels")
    args = parser.parse_args(argv)
    for run_dir in args.runs:
        if not (run_dir / "episodes.csv").is_file():
            parser.error(f"{run_dir}: no episodes.csv (expected a run directory)")
        bands, episodes, flags = episode_ends(run_dir, args.start, args.stop, args.band)
        print(f"{run_dir}: {episodes} episodes ended at {args.start:,.0f}-{args.stop:,.0f} frames")
        if not episodes:
            continue
        print(f"  reached the flag: {flags} ({flags / episodes:.0%})")
        for x, count in sorted(bands.items()):
            print(f"  x {x:5d}-{x + args.band - 1:<5d} {count:6d} ({count / episodes:.0%})")


if __name__ == "__main__":
    main()
