"""`mario-rl watch`, `play`, `race` and `leaderboard`: the window commands and the board.

pygame is imported only when a window command runs, so `mario-rl --help` stays quick.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mario_rl.bundled import resolve_agent
from mario_rl.cli.args import level_name, non_negative_int, positive_int
from mario_rl.leaderboard import (
    NES_FPS,
    Leaderboard,
    LeaderboardError,
    racer_name,
    shown_name,
)

if TYPE_CHECKING:
    from mario_rl.agents import Policy
    from mario_rl.play import InputRecorder, Inputs, Window

console = Console(width=max(Console().width, 100))

INPUTS_HELP = (
    'Input files are JSON lines: {"frame": 0, "buttons": ["right", "B"]} holds '
    'buttons from that emulator frame on; {"frame": N, "press": ["A"]} and '
    '{"frame": N, "release": ["A"]} are key events; {"frame": N, "quit": true} '
    "quits. Buttons: left, right, up, down, A (jump), B (run). A file recorded on another "
    "level than --level is refused."
)


def _load(path: Path) -> Policy:
    import torch

    from mario_rl.agents import load_policy

    # The agent acts on one observation at a time: one thread is the fastest there (several
    # times faster when the cores are busy), and it leaves the other core to the emulator.
    torch.set_num_threads(1)
    with console.status(Text(f"loading {path}")):
        return load_policy(path, "cpu")


def _open_window(title: str, controls: dict[str, str], args: argparse.Namespace) -> Window:
    from mario_rl.play import Window

    return Window(title, controls, scale=args.scale, fast=args.fast)


def _person(
    args: argparse.Namespace, level: str, window: Window, keys: dict[str, str]
) -> tuple[Inputs, InputRecorder | None]:
    from mario_rl.play import InputRecorder, KeyboardInputs, ScriptedInputs

    inputs: Inputs
    if args.inputs:
        inputs = ScriptedInputs.from_file(args.inputs)
        inputs.check_level(level)
    else:
        inputs = KeyboardInputs(window, keys)
    recorder = InputRecorder(args.record_inputs, level) if args.record_inputs else None
    return inputs, recorder


MAX_SCALE = 8
"""Largest window scale: 2048x1920 pixels. SDL crashes (segfault) on windows far larger."""


def _window_scale(text: str) -> int:
    scale = positive_int(text)
    if scale > MAX_SCALE:
        raise argparse.ArgumentTypeError(f"expected a scale of 1..{MAX_SCALE}, got {text!r}")
    return scale


def _racer_name(text: str) -> str:
    try:
        return racer_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# -- commands ----------------------------------------------------------------------------------


def cmd_watch(args: argparse.Namespace) -> None:
    from mario_rl.play import WATCH_KEYS, watch

    path, named_level = resolve_agent(args.agent, args.level or "1-1")
    policy = _load(path)
    level = args.level or named_level
    with _open_window(f"mario-rl watch: {path}", WATCH_KEYS, args) as window:
        results = watch(
            policy,
            window,
            level=level,
            episodes=args.episodes,
            seed=args.seed,
            max_frames=args.max_frames,
        )
    for number, result in enumerate(results, 1):
        console.print(f"episode {number} on {result.level}: {result.describe()}")


def cmd_play(args: argparse.Namespace) -> None:
    from mario_rl.play import describe_keys, parse_key_bindings, play_level

    keys = parse_key_bindings(args.keys)
    controls = {keys["pause"]: "pause", keys["quit"]: "quit"}
    with _open_window(f"mario-rl play {args.level}", controls, args) as window:
        inputs, recorder = _person(args, args.level, window, keys)
        try:
            result = play_level(
                args.level,
                inputs,
                window,
                help_line=describe_keys(keys),
                max_frames=args.max_frames,
                recorder=recorder,
            )
        finally:
            if recorder is not None:
                recorder.close()
    console.print(Text(f"{args.level}: {result.describe()}"))
    if recorder is not None:
        console.print(Text(f"inputs recorded to {recorder.path}"))


def cmd_race(args: argparse.Namespace) -> None:
    from mario_rl.play import (
        RACE_VERDICTS,
        QuitRequested,
        describe_keys,
        parse_key_bindings,
        race,
        race_level,
    )

    race_level(args.level)
    keys = parse_key_bindings(args.keys)
    path, _ = resolve_agent(args.agent, args.level)
    policy = _load(path)
    board = Leaderboard(args.db)
    board.ensure()  # a board that cannot be used is reported before anyone plays
    controls = {keys["pause"]: "pause", keys["quit"]: "quit"}
    with _open_window(f"mario-rl race {args.level}: {args.name}", controls, args) as window:
        inputs, recorder = _person(args, args.level, window, keys)
        try:
            result = race(
                args.level,
                args.name,
                policy,
                inputs,
                window,
                help_line=describe_keys(keys),
                max_frames=args.max_frames,
                recorder=recorder,
                board=board,
            )
        except QuitRequested:
            console.print("the race was stopped before it began; nothing was recorded")
            return
        finally:
            if recorder is not None:
                recorder.close()
    # Text, not markup: a name is printed as typed, whatever brackets or backslashes it holds.
    console.print(Text(f"{args.name}: {result.human.describe()}"))
    agent = "did not run to its end" if result.agent is None else result.agent.describe()
    console.print(Text(f"agent: {agent}"))
    console.print(Text(RACE_VERDICTS[result.winner].format(name=args.name), style="bold"))
    if result.board_error:
        raise LeaderboardError(f"the race was not (fully) recorded: {result.board_error}")
    print_leaderboard(board, args.level, limit=10)


def print_leaderboard(board: Leaderboard, level: str, limit: int) -> None:
    entries = board.entries(level)
    if not entries:
        console.print(Text(f"no runs on {level} yet in {board.path}"))
        return
    table = Table(title=Text(f"leaderboard {level} ({board.path})"), title_justify="left")
    for column in ("#", "name", "kind", "frames", "seconds", "game clock", "result", "UTC"):
        table.add_column(column, justify="right" if column in ("#", "frames") else "left")
    rank = 0
    for entry in entries[:limit]:
        if entry.frames is not None:
            rank += 1
            row = (str(rank), str(entry.frames), f"{entry.frames / NES_FPS:.2f}")
            row += (str(entry.game_time), "finished")
        else:
            row = ("-", "-", "-", "-", f"{entry.outcome} at x {entry.max_x}")
        when = entry.recorded[:16].replace("T", " ")
        table.add_row(row[0], Text(shown_name(entry.name)), entry.kind, *row[1:], when)
    console.print(table)
    finished = sum(entry.frames is not None for entry in entries)
    console.print(
        f"{finished} finished, {len(entries) - finished} not finished"
        + (f" (showing {limit})" if len(entries) > limit else "")
    )


def cmd_leaderboard(args: argparse.Namespace) -> None:
    print_leaderboard(Leaderboard(args.db), args.level, args.limit)


# -- parser ------------------------------------------------------------------------------------


def _window_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scale",
        type=_window_scale,
        default=3,
        help=f"window scale, 1..{MAX_SCALE} (default 3: the game at 768x720 pixels, with "
        "two lines of text under it)",
    )
    parser.add_argument(
        "--fast", action="store_true", help="start unthrottled instead of at 60 frames/s"
    )
    parser.add_argument(
        "--max-frames", type=positive_int, default=None, help="stop after this many frames"
    )


def _person_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys",
        default=None,
        help="key bindings, as control=key pairs with pygame key names, e.g. "
        "left=a,right=d,up=w,down=s (defaults: the arrows, jump=x, run=z, pause=p, "
        "quit=escape), or a JSON file of them",
    )
    parser.add_argument(
        "--inputs", type=Path, default=None, help="replay this input file instead of the keyboard"
    )
    parser.add_argument(
        "--record-inputs", type=Path, default=None, help="save the session as an input file"
    )


def add_play_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `watch`, `play`, `race` and `leaderboard` on the `mario-rl` subparsers."""
    watch = subparsers.add_parser(
        "watch",
        help="watch an agent play in a window",
        description="Watch an agent play: every emulator frame in full colour, with the "
        "buttons it holds, x and the game clock. Give a checkpoint, a run directory (its "
        "newest checkpoint) or a level name (the agent bundled under models/<level>/). "
        "Keys: 1 real time (60 frames/s), 2 fast, space pause, period one frame while "
        "paused, q or Esc quit.",
    )
    watch.add_argument(
        "agent",
        nargs="?",
        metavar="CHECKPOINT|LEVEL",
        help="checkpoint file, run directory or level name (default: the bundled agent of --level)",
    )
    watch.add_argument(
        "--level", type=level_name, default=None, help="level (default: the checkpoint's level)"
    )
    watch.add_argument("--episodes", type=positive_int, default=1, help="episodes (default 1)")
    watch.add_argument("--seed", type=non_negative_int, default=0, help="seed of the first episode")
    _window_options(watch)
    watch.set_defaults(func=cmd_watch)

    play = subparsers.add_parser(
        "play",
        help="play a level yourself with the keyboard",
        description="Play a level with the keyboard at 60 frames/s: arrows move, x jumps "
        "(A), z runs (B), p pauses, Esc quits (change them with --keys). " + INPUTS_HELP,
    )
    play.add_argument("--level", type=level_name, default="1-1", help="level (default 1-1)")
    _person_options(play)
    _window_options(play)
    play.set_defaults(func=cmd_play)

    race = subparsers.add_parser(
        "race",
        help="race an agent on a level; the times go on the leaderboard",
        description="You play the level, then the agent plays it from the same start. The "
        "faster finish wins (emulator frames; the game clock is shown too). Both runs go "
        "on the leaderboard; a run that dies is kept as not finished, with no time. A quit "
        "(Esc, or closing the window) stops the race with no winner: during your run it is "
        "kept as not finished and the agent does not play; during the agent's, its run is "
        "not recorded. " + INPUTS_HELP,
    )
    race.add_argument("--level", type=level_name, default="1-1", help="level (default 1-1)")
    race.add_argument(
        "--name",
        type=_racer_name,
        required=True,
        help="your name on the leaderboard (1-32 printable characters)",
    )
    race.add_argument(
        "--agent",
        default=None,
        metavar="CHECKPOINT",
        help="checkpoint or run directory (default: the bundled agent of the level)",
    )
    race.add_argument("--db", type=Path, default=None, help="leaderboard file (default: ours)")
    _person_options(race)
    _window_options(race)
    race.set_defaults(func=cmd_race)

    board = subparsers.add_parser(
        "leaderboard",
        help="print a level's race leaderboard",
        description="The race leaderboard of a level: finished runs fastest first, then the "
        "runs that did not finish. Kept in $MARIO_RL_DATA_DIR/leaderboard.sqlite3, else "
        "$XDG_DATA_HOME/mario-rl/ (default ~/.local/share/mario-rl/).",
    )
    board.add_argument("--level", type=level_name, default="1-1", help="level (default 1-1)")
    board.add_argument("--db", type=Path, default=None, help="leaderboard file (default: ours)")
    board.add_argument("--limit", type=positive_int, default=20, help="rows shown (default 20)")
    board.set_defaults(func=cmd_leaderboard)
