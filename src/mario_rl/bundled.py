"""The trained agents bundled in the repository: `models/<level>/`, one checkpoint each.

See `models/README.md` for the convention (a `*.pt` checkpoint made by `mario-rl train`,
with its `config.json`, `command.txt` and `eval.json`). Commands that take a level name
instead of a checkpoint (`watch`, `race`) find the agent here.
"""

from __future__ import annotations

import os
from pathlib import Path

from mario_rl.env.levels import UnknownLevelError, parse_level

MODELS_DIR_ENV = "MARIO_RL_MODELS_DIR"
"""Environment variable naming another models directory (tests use it)."""


class NoBundledAgentError(ValueError):
    """No bundled agent for the level asked for; the message lists the levels that have one."""


def models_dir() -> Path:
    """$MARIO_RL_MODELS_DIR, else `models/` at the root of this source tree."""
    explicit = os.environ.get(MODELS_DIR_ENV)
    return Path(explicit) if explicit else Path(__file__).resolve().parents[2] / "models"


def _checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.pt")) if folder.is_dir() else []


def bundled_levels(root: Path | None = None) -> list[str]:
    """Levels with a bundled agent, in game order."""
    root = root or models_dir()
    if not root.is_dir():
        return []
    levels = []
    for folder in root.iterdir():
        try:
            level = parse_level(folder.name)
        except UnknownLevelError:
            continue
        if _checkpoints(folder):
            levels.append(level)
    levels.sort(key=lambda level: (level.world or 0, level.stage or 0))
    return [level.name for level in levels]


def bundled_checkpoint(level: str, root: Path | None = None) -> Path:
    """The checkpoint of the agent bundled for `level`; a one-line error when there is none."""
    root = root or models_dir()
    name = parse_level(level).name
    found = _checkpoints(root / name)
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise NoBundledAgentError(
            f"{root / name} holds {len(found)} checkpoints; expected exactly one *.pt"
        )
    have = ", ".join(bundled_levels(root)) or "none yet"
    raise NoBundledAgentError(
        f"no bundled agent for level {name} (bundled levels: {have}); "
        "pass a checkpoint or run directory instead"
    )
