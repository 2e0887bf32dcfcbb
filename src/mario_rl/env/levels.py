"""Level names: `1-1` ... `8-4`, the full game, and the Gymnasium ids that name them."""

from __future__ import annotations

import re
from dataclasses import dataclass

WORLDS = range(1, 9)
STAGES = range(1, 5)
FULL_GAME_NAMES = ("full", "game", "SuperMarioBros-v0")

_SHORT_NAME = re.compile(r"^([1-8])-([1-4])$")
_GYM_ID = re.compile(r"^SuperMarioBros-([1-8])-([1-4])-v0$")


class UnknownLevelError(ValueError):
    """A level name that is neither `W-S`, the full game, nor a Gymnasium id."""


@dataclass(frozen=True, slots=True)
class Level:
    """One SMB1 level, or the whole game when `world` and `stage` are None."""

    world: int | None = None
    stage: int | None = None

    @property
    def is_full_game(self) -> bool:
        return self.world is None

    @property
    def name(self) -> str:
        """The short name: `1-1`, or `full` for the whole game."""
        return "full" if self.is_full_game else f"{self.world}-{self.stage}"

    @property
    def gym_id(self) -> str:
        if self.is_full_game:
            return "SuperMarioBros-v0"
        return f"SuperMarioBros-{self.world}-{self.stage}-v0"

    @property
    def target(self) -> tuple[int, int] | None:
        """The `target` argument `SuperMarioBrosEnv` takes."""
        return None if self.is_full_game else (self.world, self.stage)

    def __str__(self) -> str:
        return self.name


def parse_level(text: str | Level) -> Level:
    """Read `1-1`, `full`, or `SuperMarioBros-1-1-v0`; raise `UnknownLevelError` otherwise."""
    if isinstance(text, Level):
        return text
    name = str(text).strip()
    if name in FULL_GAME_NAMES:
        return Level()
    match = _SHORT_NAME.match(name) or _GYM_ID.match(name)
    if match is None:
        raise UnknownLevelError(
            f"unknown level {text!r}: expected W-S with world 1-8 and stage 1-4 (e.g. 1-1), "
            "'full' for the whole game, or a Gymnasium id like SuperMarioBros-1-1-v0; "
            "run `mario-rl levels` to list them"
        )
    return Level(int(match.group(1)), int(match.group(2)))


def all_levels() -> list[Level]:
    """The 32 levels of SMB1 in play order."""
    return [Level(world, stage) for world in WORLDS for stage in STAGES]
