"""Argument types of the `mario-rl` commands and the error for bad input.

This module imports nothing of the command modules, so every one of them can use it
without an import circle. Each type raises `argparse.ArgumentTypeError`, which `Parser`
prints as one line (exit 2); `UsageError` is the same for checks made after parsing.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, NoReturn

from mario_rl.env.actions import ACTION_SETS
from mario_rl.env.levels import UnknownLevelError, parse_level

PRESET_NAMES = (
    "blog-ddqn", "tutorial-ddqn", "tutorial-dqn", "keras-dqn", "dqn-fast", "curiosity-ppo",
    "ppo-fast", "ppo-levels", "ppo-levels-complex", "ppo-levels-more",
    "ppo-levels-more-sticky", "ppo-levels-more-sharp", "ppo-levels-more-long",
    "ppo-levels-more-simple", "ppo-levels-hires", "ppo-levels-stall", "ppo-levels-deep",
    "ppo-levels-explore", "ppo-levels-long", "ppo-levels-icm",
)  # fmt: skip
"""`mario_rl.presets.PRESETS`' names, spelled here: that module imports the agents and
torch, too slow for every command's start (a test checks they agree)."""
TERMINAL_NEXT_OBS = ("final", "next-start")
"""`mario_rl.agents.ppo.config.TERMINAL_NEXT_OBS`, spelled here for the same reason."""


class UsageError(Exception):
    """Bad input the user can fix; printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse's parser with its errors on one line (exit code 2). argparse prints the
    command's whole usage first, which for `train` is some 30 lines above the error; the
    line points to `--help` instead. Subcommands' parsers are of this class too
    (`add_subparsers` makes its parent's), and each puts itself in the parsed arguments as
    `command_parser` (the innermost command's wins), so that an error found after parsing,
    such as an unknown option, can name the command it belongs to."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(command_parser=self)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` for the options)\n")


def _whole_number(text: str, at_least: int, expected: str) -> int:
    """`text` as an int >= `at_least` (`1e3` allowed; `inf`, `2.5` refused)."""
    try:
        value = int(float(text))
    except (ValueError, OverflowError):  # OverflowError: inf, 1e400
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < at_least or value != float(text):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """A count or seed: a whole number >= 0 (`1e3` allowed, `inf` and `-5` refused)."""
    return _whole_number(text, 0, "a whole number >= 0")


def positive_int(text: str) -> int:
    """A count of at least 1 (`1e3` allowed, `inf`, `0` and `2.5` refused)."""
    return _whole_number(text, 1, "a positive integer")


def frames(text: str) -> int:
    """A frame count such as `2e6` or `500000`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of frames, got {text!r}") from None
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number of frames, got {text!r}"
        )
    return int(value)


def _number(text: str, accepts: Callable[[float], bool], expected: str) -> float:
    """`text` as a float that `accepts` takes; "expected EXPECTED, got TEXT" otherwise."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not accepts(value):  # nan fails every range, so non-numbers land here too
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    return _number(text, lambda v: 0 < v < math.inf, "a positive number")


def non_negative_float(text: str) -> float:
    return _number(text, lambda v: 0 <= v < math.inf, "a number >= 0")


def probability(text: str) -> float:
    return _number(text, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


def sticky_probability(text: str) -> float:
    """A sticky-action probability: in [0, 1), as `StickyAction` takes it (0: deterministic)."""
    return _number(text, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")


def level_name(text: str) -> str:
    """A level name as `parse_level` takes it (`1-1`, `SuperMarioBros-1-1-v0`, `full`)."""
    try:
        return parse_level(text).name
    except UnknownLevelError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def action_set_name(text: str) -> str:
    """The name of one of `ACTION_SETS`."""
    if text not in ACTION_SETS:
        raise argparse.ArgumentTypeError(
            f"unknown action set {text!r}: expected one of {', '.join(ACTION_SETS)}"
        )
    return text


def add_workers_argument(
    parser: argparse.ArgumentParser, flag: str = "--workers", default: int = 1
) -> None:
    """`--workers N` of the commands that evaluate: episodes played by N processes at once."""
    parser.add_argument(
        flag,
        type=positive_int,
        default=default,
        metavar="N",
        help=f"play the evaluation episodes in N processes at once, each loading the agent; "
        f"the report is the same for any N, and N = the number of cores is fastest when "
        f"nothing else runs (default {default})",
    )


def add_sticky_argument(parser: argparse.ArgumentParser) -> None:
    """`--sticky P` of every command that evaluates: default `EVAL_STICKY`, 0 deterministic."""
    from mario_rl.env.wrappers import EVAL_STICKY  # here: cv2 and gymnasium load slowly

    parser.add_argument(
        "--sticky",
        type=sticky_probability,
        default=EVAL_STICKY,
        metavar="P",
        help="each emulator frame repeats the previous action with probability P, so a "
        f"memorised button sequence cannot pass for a policy (default {EVAL_STICKY:g}, the Arcade "
        "Learning Environment's; 0: deterministic, where no-op starts alone do not perturb "
        "1-1)",
    )


def add_one_episode_arguments(parser: argparse.ArgumentParser) -> None:
    """The agent and the evaluation episode of the probes that replay one (`benchmarks/`'s
    death and stuck probes): a checkpoint or run directory, --level, --seed, --sticky and
    --noop-max, as `mario-rl eval` has them."""
    parser.add_argument("agent", help="a checkpoint file or a run directory (its newest)")
    parser.add_argument(
        "--level", type=level_name, default=None, help="default: the one it trained on"
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="the evaluation episode's seed"
    )
    add_sticky_argument(parser)
    parser.add_argument(
        "--noop-max", type=non_negative_int, default=30, help="random no-op starts (default 30)"
    )
