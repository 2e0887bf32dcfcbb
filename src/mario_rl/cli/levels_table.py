"""`mario-rl levels-table`: the command over `mario_rl.levels_table.build_table`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console

from mario_rl import levels_table
from mario_rl.cli.args import (
    PRESET_NAMES,
    UsageError,
    add_sticky_argument,
    add_workers_argument,
    frames,
    level_name,
    non_negative_int,
    positive_int,
)
from mario_rl.outputs import writable_file

console = Console()


def cmd_levels_table(args: argparse.Namespace) -> None:
    levels = list(dict.fromkeys(args.levels))
    # How every level is evaluated, whether its model is trained here or given.
    evaluation = {
        "seed": args.seed,
        "episodes": args.episodes,
        "max_stuck_steps": args.max_stuck_steps,
        "sticky": args.sticky,
        "progress": not args.quiet,
        "eval_workers": args.eval_workers,
    }
    if args.model is not None:
        training_only = {
            "--frames": args.frames,
            "--preset": args.preset,
            "--check-every": args.check_every,
            "--num-envs": args.num_envs,
            "--bundle": args.bundle,
            "--confirm": args.confirm or None,
            "--init-from-table": args.init_from_table,
        }
        given = [flag for flag, value in training_only.items() if value is not None]
        if given:
            raise UsageError(
                f"--model evaluates a trained model and trains nothing: drop {', '.join(given)}"
            )
        from mario_rl.bundled import resolve_agent

        try:  # as `eval` takes its agent: a checkpoint, a run, a bundle, a level's bundle
            model, _ = resolve_agent(args.model, levels[0])
        except ValueError as error:
            raise UsageError(f"--model {error}") from None
        out = writable_file(args.out)
        levels_table.evaluate_model_table(model, levels, out, **evaluation)
        console.print(f"saved {out} (state: {out.with_suffix('.json')})")
        return
    if args.frames is None:
        raise UsageError("--frames is required: the training budget per level (or --model)")
    out = writable_file(args.out)
    levels_table.build_table(
        levels,
        args.frames,
        out,
        preset=args.preset or "ppo-fast",
        runs_dir=args.runs_dir,
        num_envs=args.num_envs,
        check_every=args.check_every,
        bundle_dir=None if args.bundle is None else Path(args.bundle),
        confirm=args.confirm,
        init_from_table=None if args.init_from_table is None else Path(args.init_from_table),
        **evaluation,
    )
    console.print(f"saved {out} (state: {out.with_suffix('.json')})")


def add_levels_table_command(commands: argparse._SubParsersAction) -> None:
    """Add `levels-table` to the `mario-rl` subcommands."""
    table = commands.add_parser(
        "levels-table",
        help="train and evaluate one recipe on many levels; write a Markdown table",
        description=levels_table.__doc__.split("\n\n")[1],
    )
    table.add_argument("--levels", nargs="+", type=level_name, required=True, metavar="LEVEL")
    table.add_argument(
        "--frames", type=frames, default=None, help="budget per level, e.g. 2e6 (required)"
    )
    table.add_argument(
        "--check-every",
        type=frames,
        default=None,
        help="evaluate every N frames and stop a level at the first check that clears it "
        "(--frames is then the cap); default: train to --frames, then evaluate once",
    )
    table.add_argument(
        "--confirm",
        action="store_true",
        help="a check that clears counts only when the same checkpoint also clears at least "
        f"{levels_table.CLEARED_RATE * 100:.0f}%% of as many episodes again on other seeds "
        f"(from seed + {levels_table.CONFIRM_SEED_OFFSET}); otherwise training goes on to the next "
        "check. Stopping at the first of many close checks that clears picks a lucky one; "
        "this makes that less likely",
    )
    table.add_argument(
        "--preset", choices=PRESET_NAMES, default=None, help="the recipe (default: ppo-fast)"
    )
    table.add_argument(
        "--model",
        metavar="CHECKPOINT",
        default=None,
        help="evaluate this trained model (a checkpoint, run directory, bundle folder, or a "
        "level name for its bundled agent) on every level "
        "instead of training one per level: e.g. one trained on many levels at once "
        "(`train --train-levels`); the table has the same columns",
    )
    table.add_argument(
        "--init-from-table",
        metavar="TABLE",
        default=None,
        help="train each level on from its row in another table (its Markdown or .json) "
        "instead of from scratch: a new run from that row's checkpoint, with a fresh "
        "optimiser and learning-rate anneal over --frames; the frames column shows the "
        "frames behind the checkpoint + this table's (e.g. --preset ppo-levels-more "
        "--init-from-table runs/campaign/table.md)",
    )
    table.add_argument("--out", default="levels_table.md", help="Markdown path (state: .json)")
    table.add_argument("--seed", type=non_negative_int, default=0)
    table.add_argument("--episodes", type=positive_int, default=10, help="evaluation episodes")
    table.add_argument(
        "--max-stuck-steps",
        type=positive_int,
        default=1000,
        help="evaluation ends an episode after N agent steps without progress",
    )
    add_sticky_argument(table)
    table.add_argument("--num-envs", type=positive_int, default=None, help="preset override")
    table.add_argument("--runs-dir", default="runs/levels")
    table.add_argument(
        "--bundle",
        metavar="DIR",
        default=None,
        help="bundle each cleared level as DIR/<level>/ (e.g. models), measured on fresh "
        "seeds: sticky, deterministic and the blind-replay control; default: no bundling",
    )
    add_workers_argument(table, "--eval-workers", default=os.process_cpu_count() or 1)
    table.add_argument("--quiet", action="store_true", help="no progress bars")
    table.set_defaults(func=cmd_levels_table)
