"""A trial's level against its control's, check by check and million by million.

The campaign's trials change one thing in the recipe and train a level in a table of their
own; the control is the same level in another table (the headline's, or the column of
more frames). This prints, for one level, each table's checks side by side (clears of
those played, and the frames they were taken at) and, per million training frames, the
share of training episodes from the level's start that reached the flag and their mean
furthest x (`episodes.csv`, which holds only real starts; under training's sampled
actions and its sticky setting; the x tells levels apart before any flag):

    python benchmarks/campaign/trial_vs_control.py 8-3 \\
        --control benchmarks/campaign --trial runs/campaign-hires

A table is a campaign folder as the command writes it (`runs/campaign-NAME/`) or as
`snapshot.py save` keeps it (`benchmarks/campaign/NAME/`): its `levels/LEVEL/checks.json`
and the one run under `levels/LEVEL/` are read. Frames are each run's own, so a trial
trained on from another table's checkpoint counts from 0 at its start.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path


def checks(table: Path, level: str) -> list[dict[str, int]]:
    """The level's checks in `table`, oldest first: frames, clears, played (none before the
    first)."""
    if not (table / "levels" / level).is_dir():
        raise SystemExit(f"{table}: {level} has not begun there (no {table / 'levels' / level})")
    path = table / "levels" / level / "checks.json"
    return json.loads(path.read_text()) if path.is_file() else []


def flag_rates(table: Path, level: str, per: int) -> dict[int, tuple[int, int, int]]:
    """(flags, episodes, summed furthest x) of the training episodes that ended in each
    `per` frames, by index."""
    runs = sorted((table / "levels" / level).glob("**/episodes.csv"))
    if len(runs) != 1:
        found = ", ".join(str(run.parent) for run in runs) or "none"
        raise SystemExit(f"{table}: expected one run of {level}, found {found}")
    rates: dict[int, tuple[int, int, int]] = {}
    with runs[0].open() as rows:
        for row in csv.DictReader(rows):
            index = int(row["frames"]) // per
            flags, episodes, x = rates.get(index, (0, 0, 0))
            rates[index] = (flags + int(row["flag"]), episodes + 1, x + int(row["max_x"]))
    return rates


def comparison(control: Path, trial: Path, level: str, per: int) -> list[str]:
    """The side-by-side table as Markdown lines."""
    control_checks, trial_checks = checks(control, level), checks(trial, level)
    control_rates, trial_rates = flag_rates(control, level, per), flag_rates(trial, level, per)

    def check(rows: list[dict[str, int]], index: int) -> str:
        if index >= len(rows):
            return "-"
        row = rows[index]
        return f"{row['clears']} of {row['played']} at {row['frames']:,}"

    def rate(rates: dict[int, tuple[int, int, int]], index: int) -> str:
        flags, episodes, x = rates.get(index, (0, 0, 0))
        return f"{flags / episodes:.0%} of {episodes}, x {x / episodes:.0f}" if episodes else "-"

    lines = [
        f"| {level} | control's check | trial's check | control's training: flag, mean x "
        "| trial's training: flag, mean x |",
        "|---|---|---|---|---|",
    ]
    # Row i: the episodes that ended in its window, and the check taken at its end.
    windows = max(
        len(control_checks),
        len(trial_checks),
        *(i + 1 for i in control_rates),
        *(i + 1 for i in trial_rates),
    )
    for index in range(windows):
        start, stop = index * per, (index + 1) * per
        window = f"{start / 1e6:g}M-{stop / 1e6:g}M"
        lines.append(
            f"| {window} | {check(control_checks, index)} | {check(trial_checks, index)} "
            f"| {rate(control_rates, index)} | {rate(trial_rates, index)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("level", help="e.g. 8-3")
    parser.add_argument("--control", type=Path, required=True, help="the control's table")
    parser.add_argument("--trial", type=Path, required=True, help="the trial's table")
    parser.add_argument(
        "--per", type=float, default=1e6, help="frames per row (the checks' spacing)"
    )
    args = parser.parse_args(argv)
    if not math.isfinite(args.per) or args.per < 1:
        parser.error(f"--per: expected a positive number of frames, got {args.per}")
    print("\n".join(comparison(args.control, args.trial, args.level, int(args.per))))


if __name__ == "__main__":
    main()
