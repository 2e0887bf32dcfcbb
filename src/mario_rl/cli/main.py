"""`mario-rl`: the entry point. Builds the parser from the command modules and runs one command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from mario_rl import __version__
from mario_rl.cli.args import Parser, UsageError
from mario_rl.cli.basics import add_basic_commands
from mario_rl.cli.cs229 import add_cs229_commands
from mario_rl.cli.evaluate import add_run_commands
from mario_rl.cli.grid import add_grid_command
from mario_rl.cli.levels_table import add_levels_table_command
from mario_rl.cli.play import add_play_commands
from mario_rl.cli.train import add_training_commands
from mario_rl.env.actions import UnknownActionSetError
from mario_rl.env.levels import UnknownLevelError
from mario_rl.stopping import Terminated, stop_signals_interrupt


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
        "  mario-rl compare runs/1-1__dqn__* runs/1-1__ddqn__* --out dqn-vs-ddqn.png\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mario-rl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    add_basic_commands(commands)
    add_grid_command(commands)
    add_play_commands(commands)
    add_training_commands(commands)
    add_run_commands(commands)
    add_cs229_commands(commands)
    add_levels_table_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Found by the top parser, but the error names the command's own --help.
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        with stop_signals_interrupt():
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
