"""The trained agents bundled in the repository: `models/<level>/`, one checkpoint each.

See `models/README.md` for the convention (a `*.pt` checkpoint made by `mario-rl train`,
with its `config.json`, `command.txt` and `eval.json`). Commands that take a level name
instead of a checkpoint (`watch`, `race`, `eval`, `record`) find the agent here, and
`mario-rl bundle` (`bundle_agent`) puts one here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

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


def resolve_agent(text: str | None, level: str) -> tuple[Path, str | None]:
    """A checkpoint or run directory as given, or the bundled agent of a level name.

    `text` None means the agent bundled for `level`. Returns the path and the level named
    (None when `text` is a path).
    """
    if text is None:
        return bundled_checkpoint(level), parse_level(level).name
    if Path(text).exists():
        return Path(text), None
    try:
        named = parse_level(text).name
    except UnknownLevelError:
        raise ValueError(
            f"{text}: expected a checkpoint file, a run directory or a level name; "
            "no such file and not a level"
        ) from None
    return bundled_checkpoint(named), named


TRAINING_ONLY_FIELDS = (
    "optimizer_state",
    "target_state",
    "icm_state",
    "surprisal_stats",
    "rng_states",
    "sampler_rng",
    "replay",
)
"""Checkpoint fields only `--resume` reads: a bundled agent acts, it does not train on."""


def bundle_agent(
    checkpoint: str | Path,
    level: str,
    commands: list[str],
    root: Path | None = None,
    sample: bool = False,
) -> Path:
    """Write `root/<level>/` (model.pt, config.json, command.txt) from a training checkpoint.

    model.pt is the checkpoint without its training-only fields (a third of a PPO
    checkpoint's size); it still loads with `load_policy` but cannot be resumed. config.json
    is the run directory's, unchanged. `commands` are the command lines that trained it, in
    order (a resumed run has more than one). `sample`: the agent acts by sampling its
    policy wherever it is loaded (`Policy.set_sampling`). Any earlier bundle for the level
    is replaced; evaluating it into eval.json is the caller's next step.
    """
    from mario_rl.runs import atomic_save, load_checkpoint

    if not commands or not all(command.strip() for command in commands):
        raise ValueError("commands: expected the command line(s) that trained the agent")
    payload: dict[str, Any] = load_checkpoint(checkpoint)
    source = Path(payload.pop("path"))
    run_dir = source.parent.parent if source.parent.name == "checkpoints" else source.parent
    config = run_dir / "config.json"
    if not config.is_file():
        raise ValueError(
            f"{config}: no config.json beside the checkpoint; bundle a checkpoint from a run "
            "directory made by `mario-rl train`"
        )
    folder = (root or models_dir()) / parse_level(level).name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for field in TRAINING_ONLY_FIELDS:
        payload.pop(field, None)
    # The tabular agent keeps its table in a file beside the checkpoint.
    table_file = payload["model_state"].get("table_file")
    if isinstance(table_file, str):
        shutil.copy(source.parent / table_file, folder / table_file)
    payload["bundled_from"] = str(source)
    payload["act_by_sampling"] = sample
    atomic_save(payload, folder / "model.pt")
    shutil.copy(config, folder / "config.json")
    (folder / "command.txt").write_text("".join(command.strip() + "\n" for command in commands))
    return folder / "model.pt"
