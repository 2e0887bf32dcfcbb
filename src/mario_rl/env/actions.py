"""Named action sets: lists of NES button combinations, each one discrete action."""

from __future__ import annotations

from collections.abc import Sequence

from gym_super_mario_bros.actions import COMPLEX_MOVEMENT, RIGHT_ONLY, SIMPLE_MOVEMENT

# The controller byte: one bit per button, in the order nes-py reads them.
BUTTON_BITS = {
    "right": 0b10000000,
    "left": 0b01000000,
    "down": 0b00100000,
    "up": 0b00010000,
    "start": 0b00001000,
    "select": 0b00000100,
    "B": 0b00000010,
    "A": 0b00000001,
    "NOOP": 0,
}

Buttons = tuple[str, ...]


def _product(*groups: Sequence[Buttons]) -> list[Buttons]:
    combos: list[Buttons] = [()]
    for group in groups:
        combos = [combo + option for combo in combos for option in group]
    return [combo if combo else ("NOOP",) for combo in combos]


def _curiosity_moves() -> list[Buttons]:
    # {none, right, left} x {none, A, B, A+B}, then down and up: never start, and never left
    # and right together, as in the curiosity write-up's 14 moves.
    moves = _product([(), ("right",), ("left",)], [(), ("A",), ("B",), ("A", "B")])
    return [*moves, ("down",), ("up",)]


ACTION_SETS: dict[str, list[Buttons]] = {
    "right_only": [tuple(combo) for combo in RIGHT_ONLY],
    "simple": [tuple(combo) for combo in SIMPLE_MOVEMENT],
    "complex": [tuple(combo) for combo in COMPLEX_MOVEMENT],
    "lnr": [("left",), ("NOOP",), ("right",)],
    # CS229: {left, right, stay} x {jump, no} x {speed, no}; jump is A, speed is B.
    "cs229": _product([("left",), ("right",), ()], [("A",), ()], [("B",), ()]),
    "curiosity": _curiosity_moves(),
}

ACTION_SET_NOTES = {
    "right_only": "gym-super-mario-bros RIGHT_ONLY (TensorFlow DDQN blog)",
    "simple": "gym-super-mario-bros SIMPLE_MOVEMENT (PyTorch tutorial)",
    "complex": "gym-super-mario-bros COMPLEX_MOVEMENT",
    "lnr": "left, none, right (Keras DQN blog)",
    "cs229": "{left, right, stay} x {jump, no} x {speed, no} (CS229 report)",
    "curiosity": "{none, right, left} x {none, A, B, A+B} + down, up (curiosity PPO)",
}


class UnknownActionSetError(ValueError):
    """An action set name that is not in `ACTION_SETS`."""


def buttons_to_byte(buttons: Sequence[str]) -> int:
    """The controller byte that presses exactly `buttons`."""
    byte = 0
    for button in buttons:
        if button not in BUTTON_BITS:
            raise ValueError(f"unknown button {button!r}: expected one of {sorted(BUTTON_BITS)}")
        byte |= BUTTON_BITS[button]
    return byte


def action_set(name: str) -> list[Buttons]:
    """The button combinations of the named set; a one-line error for an unknown name."""
    if name not in ACTION_SETS:
        raise UnknownActionSetError(
            f"unknown action set {name!r}: expected one of {', '.join(ACTION_SETS)}"
        )
    return ACTION_SETS[name]


def noop_index(name: str) -> int:
    """The index of the set's no-op (no button held): what the no-op frames of a start
    press, and the previous action sticky actions can repeat at an episode's first frame.
    Not always 0: `lnr` starts with left, `cs229` with left+A+B."""
    return action_set(name).index(("NOOP",))


def extends(name: str, base: str) -> bool:
    """Whether set `name` is set `base` with more actions after it: `simple` and `complex`
    extend `right_only`. A policy trained on `base` then keeps its actions' indices in
    `name` (a warm start into more actions, `mario_rl.training`)."""
    bigger, smaller = action_set(name), action_set(base)
    return len(bigger) > len(smaller) and bigger[: len(smaller)] == smaller


def action_bytes(name: str) -> list[int]:
    """The controller byte of each action in the named set, in action-index order."""
    return [buttons_to_byte(combo) for combo in action_set(name)]


def describe(buttons: Sequence[str]) -> str:
    return "+".join(buttons)
