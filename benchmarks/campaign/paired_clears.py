"""Two agents' clears seed by seed, from evaluation reports on the same seeds.

A trial's agent and its control each evaluated on one seed set (`mario-rl eval ... --out`,
or a bundle's eval.json) play the same starts and the same sticky draws, so their
episodes pair up by seed. What tells them apart is the seeds one cleared and the other did
not; the exact two-sided sign test on those says how often chance alone would split them
so unevenly. Pairs from several levels or seed sets pool:

    python benchmarks/campaign/paired_clears.py \\
        --pair benchmarks/campaign/averaged/8-3-average-20000.json \\
               benchmarks/campaign/averaged/8-3-bundle-20000.json \\
        --pair benchmarks/campaign/averaged/2-3-average-20000.json \\
               benchmarks/campaign/averaged/2-3-bundle-20000.json

The first report of each pair is the trial's, the second the control's.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def clears_by_seed(path: Path) -> tuple[str, dict[int, bool]]:
    """The report's level and whether each seed's episode cleared."""
    try:
        report = json.loads(path.read_text())
        episodes = report["per_episode"]
        return str(report["level"]), {int(e["seed"]): bool(e["cleared"]) for e in episodes}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(
            f"{path}: not an evaluation report with per-episode results ({error})"
        ) from None


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test: the chance of a split at least this uneven if each
    discordant seed went either way with probability 1/2."""
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def compare(pairs: list[tuple[Path, Path]]) -> list[str]:
    """One line per pair and the pooled line."""
    lines, episodes, trial_total, control_total, trial_alone, control_alone = [], 0, 0, 0, 0, 0
    for trial_path, control_path in pairs:
        level, trial = clears_by_seed(trial_path)
        control_level, control = clears_by_seed(control_path)
        if level != control_level or trial.keys() != control.keys():
            raise SystemExit(
                f"{trial_path} and {control_path}: not the same level and seeds "
                f"({level}, {len(trial)} seeds; {control_level}, {len(control)} seeds)"
            )
        seeds = sorted(trial)
        both = sum(trial[s] and control[s] for s in seeds)
        only_trial = sum(trial[s] and not control[s] for s in seeds)
        only_control = sum(control[s] and not trial[s] for s in seeds)
        lines.append(
            f"{level} seeds {seeds[0]}..{seeds[-1]}: trial {sum(trial.values())}/{len(seeds)}, "
            f"control {sum(control.values())}/{len(seeds)}; both {both}, trial alone "
            f"{only_trial}, control alone {only_control}"
        )
        episodes += len(seeds)
        trial_total += sum(trial.values())
        control_total += sum(control.values())
        trial_alone += only_trial
        control_alone += only_control
    lines.append(
        f"pooled over {episodes} episodes each: trial {trial_total}, control {control_total}; "
        f"cleared by one alone: trial {trial_alone}, control {control_alone}; "
        f"two-sided sign test p = {sign_test(trial_alone, control_alone):.3f}"
    )
    return lines


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Used in docs/campaign.md's trials, e.g. 'One policy from several'.",
    )
    parser.add_argument(
        "--pair",
        nargs=2,
        action="append",
        type=Path,
        required=True,
        metavar=("TRIAL", "CONTROL"),
        help="two evaluation reports (JSON) on the same level and seeds; repeat to pool",
    )
    lines = compare([(trial, control) for trial, control in parser.parse_args(argv).pair])
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
