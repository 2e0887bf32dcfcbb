"""`mario-rl levels`, `actions`, `random` and `bench env`: what the env offers, and how fast."""

from __future__ import annotations

import argparse
import os

from rich.console import Console
from rich.table import Table

from mario_rl.cli.args import action_set_name, level_name, non_negative_int, positive_int
from mario_rl.env.actions import ACTION_SET_NOTES, ACTION_SETS, describe
from mario_rl.env.levels import all_levels

console = Console(width=max(Console().width, 100))


def cmd_levels(args: argparse.Namespace) -> None:
    table = Table(title="Super Mario Bros. levels", show_lines=False)
    table.add_column("world")
    for stage in range(1, 5):
        table.add_column(f"stage {stage}")
    for world in range(1, 9):
        table.add_row(str(world), *(f"{world}-{stage}" for stage in range(1, 5)))
    console.print(table)
    console.print(
        f"{len(all_levels())} levels. Also: 'full' (the whole game, SuperMarioBros-v0). "
        "Gymnasium ids like SuperMarioBros-1-1-v0 are accepted too."
    )


def cmd_actions(args: argparse.Namespace) -> None:
    names = [args.name] if args.name else list(ACTION_SETS)
    for name in names:
        table = Table(title=f"{name}: {ACTION_SET_NOTES[name]}", title_justify="left")
        table.add_column("index", justify="right")
        table.add_column("buttons")
        for index, buttons in enumerate(ACTION_SETS[name]):
            table.add_row(str(index), describe(buttons))
        console.print(table)


def cmd_random(args: argparse.Namespace) -> None:
    from mario_rl.env.pipeline import EnvConfig
    from mario_rl.random_agent import run_random_agent

    config = EnvConfig(level=args.level, actions=args.actions)
    result = run_random_agent(config, args.steps, seed=args.seed, progress=not args.quiet)
    console.print(
        f"random agent on {args.level} ({args.actions}): {result.steps} steps, "
        f"{result.frames} frames in {result.seconds:.1f} s = "
        f"[bold]{result.frames_per_second:.0f} frames/s[/bold]; "
        f"{result.episodes} episodes ended, furthest x [bold]{result.best_x}[/bold], "
        f"flags {result.flags}"
    )


def cmd_bench_env(args: argparse.Namespace) -> None:
    from mario_rl.bench import bench_env
    from mario_rl.env.pipeline import EnvConfig

    config = EnvConfig(level=args.level, actions="right_only")
    settings = "raw, pipeline, 1..N workers in lock step and in turn"
    with console.status(f"measuring ({settings}) x {args.rounds}..."):
        results = bench_env(config, args.frames, args.max_workers, args.seed, args.rounds)
    raw, single = results[0], results[1]
    table = Table(
        title=f"env throughput on {args.level}, {os.cpu_count()} cores "
        "(skip 4 + max-pool 2, 84x84 gray, stack 4)"
    )
    for column in ("setting", "frames", "seconds", "frames/s", "vs raw", "vs n x 1 worker"):
        table.add_column(column, justify="left" if column == "setting" else "right")
    one_worker = next(r for r in results if r.workers == 1)
    for result in results:
        scaling = ""
        if result.workers:
            scaling = f"{result.fps / (result.workers * one_worker.fps):.2f}"
        table.add_row(
            result.setting,
            str(result.frames),
            f"{result.seconds:.2f}",
            f"{result.fps:.0f}",
            f"{result.fps / raw.fps:.2f}",
            scaling,
        )
    console.print(table)
    console.print(f"pipeline in process / raw emulator: {single.fps / raw.fps:.2f}")


def add_basic_commands(commands: argparse._SubParsersAction) -> None:
    """Add `levels`, `actions`, `random` and `bench` to the `mario-rl` subcommands."""
    levels = commands.add_parser("levels", help="list the level names")
    levels.set_defaults(func=cmd_levels)

    actions = commands.add_parser("actions", help="print the named action sets")
    actions.add_argument("name", nargs="?", type=action_set_name, help="one set (default: all)")
    actions.set_defaults(func=cmd_actions)

    random = commands.add_parser(
        "random",
        help="play random actions through the full pipeline (the write-ups' random agent)",
        description="Uniformly random actions through the standard pipeline (skip 4, 84x84 "
        "gray, stack 4). Ends with frames/s and the furthest x reached.",
    )
    random.add_argument("--level", type=level_name, default="1-1", help="level (default 1-1)")
    random.add_argument(
        "--actions", type=action_set_name, default="simple", help="action set (default simple)"
    )
    random.add_argument(
        "--steps", type=positive_int, default=2000, help="agent steps (default 2000)"
    )
    random.add_argument("--seed", type=non_negative_int, default=0, help="seed (default 0)")
    random.add_argument("--quiet", action="store_true", help="no progress bar")
    random.set_defaults(func=cmd_random)

    bench = commands.add_parser("bench", help="measure throughput")
    bench_targets = bench.add_subparsers(dest="target", metavar="TARGET", required=True)
    bench_env = bench_targets.add_parser(
        "env",
        help="raw emulator vs the pipeline vs 1..N workers, in one run",
        description="Measures, one after another in this run: the raw emulator "
        "(_frame_advance), the full pipeline in this process, and the pipeline in 1..N worker "
        "processes, stepped in lock step (all wait for the slowest) and, from 2 on, in turn "
        "(each worker gets its next action as soon as its own step is back, as training "
        "steps its env groups), in --rounds interleaved rounds so that the machine's "
        "drifting speed falls on every setting alike. Prints frames/s and the ratios the "
        "project's targets are stated in.",
    )
    bench_env.add_argument("--level", type=level_name, default="1-1")
    bench_env.add_argument(
        "--frames", type=positive_int, default=6000, help="frames per setting and worker"
    )
    bench_env.add_argument(
        "--max-workers", type=positive_int, default=None, help="default: number of cores"
    )
    bench_env.add_argument("--seed", type=non_negative_int, default=0)
    bench_env.add_argument(
        "--rounds", type=positive_int, default=3, help="interleaved rounds the frames split into"
    )
    bench_env.set_defaults(func=cmd_bench_env)
