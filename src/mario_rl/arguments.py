"""Argument types of the `mario-rl` commands, in a module that imports nothing of ours, so
every command module can use them without an import circle.

Each raises `argparse.ArgumentTypeError`, which argparse prints as one line (exit 2).
"""

from __future__ import annotations

import argparse


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
