"""The trained agents bundled in the repository: `models/<level>/`, one checkpoint each.

See `models/README.md` for the convention (a `*.pt` checkpoint made by `mario-rl train`,
with its `config.json`, `command.txt` and `eval.json`). Commands that take a level name
instead of a checkpoint (`watch`, `race`, `eval`, `record`) find the agent here, and
`mario-rl bundle` (`bundle_agent`) puts one here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mario_rl.env.levels import UnknownLevelError, parse_level

MODELS_DIR_ENV = "MARIO_RL_MODELS_DIR"
"""Environment variable naming another models directory (tests use it)."""


class NoBundledAgentError(ValueError):
    """No bundled agent for the level asked for; the message lists the levels that have one."""


def models_dir() -> Path:
    """$MARIO_RL_MODELS_DIR, else `models/` at the root of this source tree, else (in an
    installed wheel) the copy of it shipped as the package `mario_rl.models`."""
    explicit = os.environ.get(MODELS_DIR_ENV)
    if explicit:
        return Path(explicit)
    source_tree = Path(__file__).resolve().parents[2] / "models"
    if source_tree.is_dir():
        return source_tree
    return Path(__file__).resolve().parent / "models"


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
    "explore_rng",
    "sampler_rng",
    "action_rng",
)
"""Checkpoint fields only `--resume` reads: a bundled agent acts, it does not train on."""


def bundle_measure(
    level: str,
    episodes: int,
    seed: int,
    sticky: float,
    noop_max: int = 30,
    max_stuck_steps: int = 250,
    progress: bool = False,
    workers: int = 1,
) -> Callable[[Path], dict[str, Any]]:
    """The evaluation `bundle_agent` saves as eval.json, for its `measure` argument.

    `episodes` greedy episodes seeded `seed`.. under sticky actions `sticky`, with the
    blind-replay control, and (when `sticky` > 0) as many deterministic ones, summarised
    under "deterministic_eval". `workers`: processes playing the episodes (`evaluate`).
    """
    from mario_rl.agents import load_policy
    from mario_rl.evaluate import evaluate

    def measure(model: Path) -> dict[str, Any]:
        def run(sticky: float, control: bool) -> dict[str, Any]:
            return evaluate(
                load_policy(model),
                level=level,
                episodes=episodes,
                noop_max=noop_max,
                seed=seed,
                max_stuck_steps=max_stuck_steps,
                progress=progress,
                sticky=sticky,
                control=control,
                workers=workers,
            )

        report = run(sticky, control=True)
        if sticky > 0:
            deterministic = run(0.0, control=False)
            # The same model.pt: its path is the report's own (the building folder's
            # path here would be stale once the folder is swapped in).
            report["deterministic_eval"] = {
                key: value
                for key, value in deterministic.items()
                if key not in ("per_episode", "checkpoint")
            }
        return report

    return measure


def bundle_agent(
    checkpoint: str | Path,
    level: str,
    commands: list[str],
    measure: Callable[[Path], dict[str, Any]],
    root: Path | None = None,
    sample: bool = False,
) -> Path:
    """Write `root/<level>/` (model.pt, config.json, command.txt, eval.json); returns it.

    model.pt is the checkpoint without its training-only fields (a third of a PPO
    checkpoint's size); it still loads with `load_policy` but cannot be resumed. config.json
    is the run directory's, unchanged. `commands` are the command lines that trained it, in
    order (a resumed run has more than one; lines starting with `#` are notes). `sample`:
    the agent acts by sampling its policy wherever it is loaded (`Policy.set_sampling`).
    `measure(model_path)` evaluates the new model.pt into the report saved as eval.json.
    The folder is built beside the old one and swapped in only when complete, so a
    failure at any step leaves an earlier bundle of the level as it was.
    """
    from mario_rl.agents import load_policy
    from mario_rl.runs import atomic_save, file_beside, load_checkpoint, run_directory

    if not any(command.strip() and not command.startswith("#") for command in commands):
        raise ValueError("commands: expected the command line(s) that trained the agent")
    payload: dict[str, Any] = load_checkpoint(checkpoint)
    source = Path(payload.pop("path"))
    config = run_directory(source) / "config.json"
    if not config.is_file():
        raise ValueError(
            f"{config}: no config.json beside the checkpoint; bundle a checkpoint from a run "
            "directory made by `mario-rl train`"
        )
    name = parse_level(level).name
    trained_on = payload["env_config"].get("level")
    if trained_on != name:
        raise ValueError(
            f"{source} was trained on level {trained_on}; bundle it under models/{trained_on}"
        )
    if sample:
        load_policy(source).set_sampling(True)  # a one-line error for a greedy-only agent
    folder = (root or models_dir()) / name
    building = folder.with_name(f".{name}.building")
    if building.exists():
        shutil.rmtree(building)
    building.mkdir(parents=True)
    try:
        for field in TRAINING_ONLY_FIELDS:
            payload.pop(field, None)
        # The tabular agent keeps its table in a file beside the checkpoint.
        table_file = payload["model_state"].get("table_file")
        if table_file is not None:
            table = file_beside(source, table_file)
            shutil.copy(table, building / table.name)
        # Re-bundling a bundled model.pt keeps the training run it came from.
        payload["bundled_from"] = payload.get("bundled_from") or str(source)
        payload["act_by_sampling"] = sample
        atomic_save(payload, building / "model.pt")
        shutil.copy(config, building / "config.json")
        (building / "command.txt").write_text("".join(line.rstrip() + "\n" for line in commands))
        report = measure(building / "model.pt")
        report["checkpoint"] = "model.pt"  # the file beside eval.json, wherever it moves
        (building / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    if folder.exists():
        shutil.rmtree(folder)
    building.rename(folder)
    return folder


def bundled_table_row(report: dict, folder: Path) -> str:
    """The README table's row for a bundled agent, from its eval.json."""
    from mario_rl.runs import run_label  # here: runs imports torch, which only this row needs

    config = json.loads((folder / "config.json").read_text())
    frames = report["mean_frames_to_clear"]
    deterministic = report.get("deterministic_eval", report if report["deterministic"] else None)
    control = report["control"]

    def rate(numbers: dict | None) -> str:
        return "-" if numbers is None else f"{numbers['clears']}/{numbers['episodes']}"

    return (
        f"| {report['level']} | {run_label(config, report['algo'])} | {report['acting']} | "
        f"{rate(report)} | {rate(deterministic)} | {rate(control)} | "
        f"{report['distinct_trajectories']} | {report['mean_x']:.0f} | "
        f"{'-' if frames is None else f'{frames:.0f}'} |"
    )
