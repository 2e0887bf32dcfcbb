"""`mario-rl`: the command line. Each subcommand is a thin layer over a library function."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

from rich.console import Console
from rich.table import Table

from mario_rl import __version__
from mario_rl.arguments import non_negative_int, positive_int
from mario_rl.env.actions import ACTION_SET_NOTES, ACTION_SETS, UnknownActionSetError, describe
from mario_rl.env.levels import UnknownLevelError, all_levels, parse_level
from mario_rl.gridworld_cli import add_grid_command

console = Console(width=max(Console().width, 100))


class UsageError(Exception):
    """Bad input the user can fix; printed as one line, exit code 2."""


def _level(text: str) -> str:
    try:
        return parse_level(text).name
    except UnknownLevelError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _action_set(text: str) -> str:
    if text not in ACTION_SETS:
        raise argparse.ArgumentTypeError(
            f"unknown action set {text!r}: expected one of {', '.join(ACTION_SETS)}"
        )
    return text


_positive_int = positive_int  # the name the command modules import today


# -- commands ----------------------------------------------------------------------------


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
    with console.status("measuring (raw emulator, pipeline, then 1..N workers)..."):
        results = bench_env(config, args.frames, args.max_workers, seed=args.seed)
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


# -- parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mario-rl",
        description="Train, watch, measure and race reinforcement learning agents that play "
        "Super Mario Bros. (NES).",
        epilog="Examples:\n"
        "  mario-rl levels\n"
        "  mario-rl actions curiosity\n"
        "  mario-rl random --level 1-1 --steps 2000\n"
        "  mario-rl bench env --frames 3000\n"
        "  mario-rl train --preset dqn-fast --level 1-1 --frames 2e6\n"
        "  mario-rl eval runs/1-1__ddqn__0__20250101-120000 --episodes 20\n"
        "  mario-rl record runs/1-1__ddqn__0__20250101-120000 --out mario.mp4\n"
        "  mario-rl compare runs/*tutorial* --out dqn-vs-ddqn.png\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mario-rl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    levels = commands.add_parser("levels", help="list the level names")
    levels.set_defaults(func=cmd_levels)

    actions = commands.add_parser("actions", help="print the named action sets")
    actions.add_argument("name", nargs="?", type=_action_set, help="one set (default: all)")
    actions.set_defaults(func=cmd_actions)

    random = commands.add_parser(
        "random",
        help="play random actions through the full pipeline (the write-ups' random agent)",
        description="Uniformly random actions through the standard pipeline (skip 4, 84x84 "
        "gray, stack 4). Ends with frames/s and the furthest x reached.",
    )
    random.add_argument("--level", type=_level, default="1-1", help="level (default 1-1)")
    random.add_argument(
        "--actions", type=_action_set, default="simple", help="action set (default simple)"
    )
    random.add_argument(
        "--steps", type=_positive_int, default=2000, help="agent steps (default 2000)"
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
        "processes. Prints frames/s and the ratios the project's targets are stated in.",
    )
    bench_env.add_argument("--level", type=_level, default="1-1")
    bench_env.add_argument(
        "--frames", type=_positive_int, default=6000, help="frames per setting and worker"
    )
    bench_env.add_argument(
        "--max-workers", type=_positive_int, default=None, help="default: number of cores"
    )
    bench_env.add_argument("--seed", type=non_negative_int, default=0)
    bench_env.set_defaults(func=cmd_bench_env)
    add_grid_command(commands)
    from mario_rl.play_cli import add_play_commands

    add_play_commands(commands)
    from mario_rl.train_cli import add_training_commands

    add_training_commands(commands)
    from mario_rl.cs229_cli import add_cs229_commands

    add_cs229_commands(commands)
    from mario_rl.levels_table import add_levels_table_command

    add_levels_table_command(commands)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: a training run saves its checkpoint, then exits 143."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """`kill PID` and `kill -INT PID` stop a command as Ctrl-C does, also in the background.

    A shell starts background jobs (`nohup mario-rl train ... &`) with SIGINT ignored, and
    SIGTERM would end the run at once: both would lose the work since the last checkpoint.
    The handlers before are restored afterwards (tests call `main` in their own process).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGTERM, _terminate)
    if before[1] is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGINT, before[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        with _stop_signals_interrupt():
            func(args)
    except (UsageError, UnknownLevelError, UnknownActionSetError, ValueError) as error:
        print(f"mario-rl {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print("terminated" if isinstance(stop, Terminated) else "interrupted", file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    except OSError as error:  # the machine's fault, not the input's: a full disk, a lost mount
        where = f" ({error.filename})" if error.filename else ""
        print(f"mario-rl {args.command}: error: {error.strerror or error}{where}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
