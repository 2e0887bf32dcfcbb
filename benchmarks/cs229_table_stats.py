"""How full a CS229 agent's Q-table is: states, visited state-action pairs, visits.

    python benchmarks/cs229_table_stats.py RUN_DIR [RUN_DIR ...]

For each run directory (or checkpoint) of `mario-rl train --algo tabular` or
`mario-rl cs229-study`, reads the newest checkpoint's table and prints: the training
episodes and frames behind it, the states in the table, the state-action pairs visited
of all pairs of those states, the states visited once, and the median and 90th
percentile of visits per state. A sparse table (many states seen once, few pairs
visited) points at coverage; a dense one that still fails points at values or at a state
that does not tell situations apart.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from mario_rl.agents.cs229 import load_table
from mario_rl.runs import load_checkpoint


def table_stats(path: str) -> dict[str, float]:
    checkpoint = load_checkpoint(path)
    table = load_table(checkpoint)
    per_state = table.visits.sum(axis=1)
    return {
        "episodes": int(checkpoint["counters"]["episodes"]),
        "frames": int(checkpoint["counters"]["frames"]),
        "states": len(table),
        "pairs visited": int((table.visits > 0).sum()),
        "pairs": int(table.visits.size),
        "states seen once": int((per_state == 1).sum()),
        "median visits per state": float(np.median(per_state)),
        "90th percentile": float(np.percentile(per_state, 90)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories or checkpoints")
    args = parser.parse_args()
    for path in args.runs:
        stats = table_stats(path)
        print(
            f"{path}: {stats['episodes']:,} episodes, {stats['frames']:,} frames; "
            f"{stats['states']:,} states, {stats['pairs visited']:,} of {stats['pairs']:,} "
            f"pairs visited, {stats['states seen once']:,} states seen once, visits per "
            f"state median {stats['median visits per state']:.0f}, 90th percentile "
            f"{stats['90th percentile']:.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
