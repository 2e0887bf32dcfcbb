"""`mario-rl cs229-study`: the CS229 report's parameter studies of its tabular agent.

The agent itself is `mario_rl.agents.cs229`; it is imported only when a command runs.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from mario_rl.cli.args import UsageError, level_name, non_negative_int, positive_int

if TYPE_CHECKING:
    from mario_rl.agents.cs229 import CS229Config

console = Console(width=max(Console().width, 100))
STUDY_EPISODES = 100
"""Training episodes per variant of `cs229-study` by default: a small budget."""
STUDY_EVAL_EPISODES = 5
"""Evaluation episodes of `cs229-study` by default (the report: 100)."""
STUDY_VARIANT_NAMES = ("default", "fixed-alpha", "gamma-0.2", "rings", "gap")
"""`mario_rl.agents.cs229.STUDY_VARIANTS`' names, spelled here: that module imports torch,
too slow for every command's start (a test checks they agree)."""
REPORT_STUDY_NAMES = STUDY_VARIANT_NAMES[:3]
"""The CS229 report's own studies (`mario_rl.agents.cs229.REPORT_STUDIES`)."""


def config_from_args(args: argparse.Namespace) -> CS229Config:
    """The `CS229Config` of the flags `add_config_arguments` adds."""
    from mario_rl.agents.cs229 import CS229Config

    return CS229Config(
        alpha=args.alpha,
        decay_alpha=not args.fixed_alpha,
        gamma=args.gamma,
        epsilon=args.epsilon,
        frames_per_decision=args.frames_per_decision,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        no_progress_decisions=args.no_progress_decisions,
        gap_feature=args.gap_feature,
        enemy_rings=args.enemy_rings,
        episodes=args.episodes,
        num_envs=args.num_envs,
    )


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The CS229 settings as flags (defaults: the report's)."""
    parser.add_argument("--alpha", type=float, default=0.8, help="alpha0 (default 0.8)")
    parser.add_argument(
        "--fixed-alpha", action="store_true", help="a constant alpha instead of alpha0 / visits"
    )
    parser.add_argument("--gamma", type=float, default=0.6, help="discount (default 0.6)")
    parser.add_argument("--epsilon", type=float, default=0.3, help="exploration (default 0.3)")
    parser.add_argument(
        "--frames-per-decision",
        type=positive_int,
        default=6,
        help="frames each action is held (default 6)",
    )
    parser.add_argument(
        "--gap-feature",
        action="store_true",
        help="ours, beyond the report: one more state bit, a pit in the next 2 tile columns",
    )
    parser.add_argument(
        "--enemy-rings",
        action="store_true",
        help="the report's 24 enemy bits read as rings (near 3x3, mid 7x7 less 3x3, far 11x11 "
        "less 7x7 per direction) instead of the nearest range per direction (16 bits)",
    )
    parser.add_argument(
        "--no-progress-decisions",
        type=non_negative_int,
        default=100,
        help="truncate an episode after N decisions without a new best x (default 100; 0: never)",
    )
    parser.add_argument(
        "--num-envs",
        type=positive_int,
        default=1,
        help="envs in worker processes feeding the one table, stepped in turn, each decision "
        "learned in env order (default 1: one env in this process; 3 keeps 2 cores busy)",
    )
    parser.add_argument(
        "--eval-every",
        type=positive_int,
        default=20,
        help="training episodes between evaluations (default 20)",
    )
    parser.add_argument(
        "--eval-episodes",
        type=positive_int,
        default=STUDY_EVAL_EPISODES,
        help=f"episodes per evaluation (default {STUDY_EVAL_EPISODES}; the report: 100)",
    )


def cmd_cs229_study(args: argparse.Namespace) -> None:
    from mario_rl.agents.cs229 import STUDY_VARIANTS
    from mario_rl.env.levels import parse_level
    from mario_rl.runs import RunConfig
    from mario_rl.studies import run_study, summary

    base = config_from_args(args)
    # The episodes are the budget: no frame limit (RunConfig's default would cut a long
    # study short), only --minutes if given.
    run = RunConfig(seed=args.seed, frames=None, minutes=args.minutes, progress=not args.quiet)
    level = parse_level(args.level).name
    seeds = list(range(args.seed, args.seed + args.seeds))
    if args.out:
        out = Path(args.out)
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path(args.runs_dir) / f"cs229-study__{level}__{args.seed}__{stamp}"
    variants = list(dict.fromkeys(args.variants))
    console.print(
        f"{len(variants)} variants x {len(seeds)} seeds, {args.episodes} training episodes "
        f"each, on {level} in {out} (run the same command with --out {out} to continue it)"
    )
    try:
        keep = Path(args.keep_copy) if args.keep_copy else None
        plot, run_dirs = run_study(level, base, run, out, variants, seeds, keep=keep)
    except ValueError as error:
        raise UsageError(str(error)) from error
    for variant, paths in run_dirs.items():
        numbers = summary(paths)
        label = STUDY_VARIANTS[variant][0]
        if numbers is None:
            console.print(f"{label}: no evaluation (fewer episodes than --eval-every)")
            continue
        wins = ", ".join(f"{rate:.0%}" for rate in numbers["last_win_rates"])
        best = ", ".join(f"{rate:.0%}" for rate in numbers["best_win_rates"])
        console.print(
            f"{label}: last evaluation win {numbers['mean_last_win_rate']:.0%} on average "
            f"({wins}), score {numbers['mean_last_score']:.0f}, enemies killed "
            f"{numbers['mean_last_kill_pct']:.0f}%, decisions in unseen states "
            f"{numbers['mean_last_unseen_share']:.0%}; best win per seed {best}"
        )
    console.print(f"study plot: [bold]{plot}[/bold]")


def add_cs229_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `mario-rl cs229-study` on the `mario-rl` command's subparsers."""
    study = subparsers.add_parser(
        "cs229-study",
        help="the CS229 report's studies: fixed alpha 0.15 and gamma 0.2 against the defaults",
        description="Trains the CS229 tabular agent (symbolic RAM state, Q-table) once per "
        "variant and seed: by default the report's defaults (alpha0 0.8 / visits, gamma 0.6), "
        "a fixed alpha 0.15, and gamma 0.2 (--variants; rings: the 24 enemy bits as rings; "
        "gap: a pit-ahead bit), "
        "on --seeds seeds; each for --episodes training episodes with an evaluation (alpha 0, "
        "epsilon 0.01) every --eval-every. Plots the learning curves together, the mean over "
        "the seeds with their range: win probability, composite score, share of enemies killed, "
        "time to finish. A study stopped part-way is continued by the same command with "
        "--out its folder.",
    )
    study.add_argument("--level", type=level_name, default="1-1", help="level (default 1-1)")
    study.add_argument(
        "--episodes",
        type=positive_int,
        default=STUDY_EPISODES,
        help=f"training episodes per variant (default {STUDY_EPISODES})",
    )
    study.add_argument(
        "--minutes", type=float, default=None, help="also stop each variant after this long"
    )
    study.add_argument(
        "--variants",
        nargs="+",
        choices=STUDY_VARIANT_NAMES,
        default=list(REPORT_STUDY_NAMES),
        metavar="NAME",
        help=f"which variants: {', '.join(STUDY_VARIANT_NAMES)} (default: the report's "
        f"{', '.join(REPORT_STUDY_NAMES)}; rings: the report's 24 enemy bits as rings; gap: "
        "ours, the pit-ahead bit of --gap-feature, which gives it to every variant)",
    )
    study.add_argument("--seed", type=non_negative_int, default=0, help="first seed (default 0)")
    study.add_argument(
        "--seeds",
        type=positive_int,
        default=1,
        help="seeds per variant, from --seed on (default 1; the curves then show the mean "
        "and the range over them)",
    )
    study.add_argument("--runs-dir", default="runs", help="parent folder (default runs/)")
    study.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="the study's folder; an existing one is continued (finished runs kept, a "
        "stopped one resumed from its checkpoint); default: a new one in --runs-dir",
    )
    study.add_argument(
        "--keep-copy",
        metavar="DIR",
        default=None,
        help="keep what continuing the study needs in DIR, a folder that outlives the machine "
        "(one git tracks): study.json, and each run's newest checkpoint and logs after each "
        "of its checkpoints (train --keep-copy); on a machine that lost --out, copy DIR into "
        "it (mkdir -p OUT && cp -r DIR/. OUT/) and run the same command",
    )
    study.add_argument("--quiet", action="store_true", help="no progress bars")
    add_config_arguments(study)
    study.set_defaults(func=cmd_cs229_study)
