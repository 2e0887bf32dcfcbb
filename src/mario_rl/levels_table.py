"""One recipe and one budget on many levels, as a Markdown table (`mario-rl levels-table`).

Like the curiosity write-up's table of levels passed: each level is trained from scratch
with the same preset, seed and frame budget (with `--check-every N`: evaluated every N
frames and stopped at the first check that clears it, the budget a cap), then evaluated
(greedy, from the level's real start after random no-ops, under sticky actions: p=0.25 per
frame unless `--sticky`). The
table has one row per level: cleared (at least 90% of the evaluation episodes, `CLEARED_RATE`),
clear rate, the furthest x, that x as a share of the level's length, training frames and
minutes.

Progress is kept in `<out>.json` beside the Markdown, written with the recipe before the
first level and rewritten after every level, so a
run that is stopped resumes where it was: levels already in it are skipped, and a level
whose training was stopped continues from its newest checkpoint (each level trains in its
own folder, `<runs-dir>/<level>/`; `piece.json` there names the frames the piece being
trained aims at, so a stop does not move the checks off the `--check-every` grid; each
check's evaluation report is kept there as `checks/frames_<N>.json`). The pieces of a level
are one run to its schedules: the learning rate anneals over the level's frame cap
(`RunConfig.schedule_frames`), not over each piece. Below
the table, the Markdown says which levels are done, running (a checkpoint but no row yet)
and pending. A state made with another recipe
(preset, budget, seed, evaluation) is refused rather than mixed in.

A check that cannot clear the level any more (more than 10% of its episodes failed)
stops there, the episodes it played being the first of the full check, so it decides the
same as the full check in a fraction of the time: a policy that has not learned the level
yet fails slowly (a stuck episode runs `--max-stuck-steps` steps). The check at the frame
cap plays all its episodes, for the death map. Evaluations play their episodes in
`--eval-workers` processes (default: one per core, training being paused meanwhile).

Each level's evaluation also draws a death map beside the table, `<out stem>.<level>.png`:
where the episodes that did not clear ended along the level, with the flag marked where
its x is known.

With `--confirm`, a check that clears is confirmed before the level counts as cleared:
the same checkpoint plays as many episodes again on other seeds (`CONFIRM_SEED_OFFSET`),
and must clear at least `CLEARED_RATE` of them too; otherwise training goes on to the
next check (at the cap, the level is not cleared). Checking every
`--check-every` frames and stopping at the first check that clears picks the luckiest of
several close checks: of the campaign's first four levels cleared so, the two checked at 46
of 50 cleared 42 and 44 of 50 on fresh seeds. Two independent passes make that less
likely, at the cost of one more evaluation per passing check.

With a bundle directory (`--bundle DIR`), each cleared level's checkpoint is bundled as
`DIR/<level>/` (`mario_rl.bundled`), measured afresh on other seeds than the checks
(`BUNDLE_SEED_OFFSET`): the checks pick the first checkpoint that clears, so their own
clear rate is biased upwards. The bundle's eval.json holds the sticky and deterministic
clear rates and the blind-replay control, and the table shows them.

With `--init-from-table TABLE` (`init_from_table`) each level trains on from its row in
another table instead of from scratch: a new run from that row's checkpoint (`train`'s
`init_from`: the networks, with a fresh optimiser and a fresh learning-rate anneal over
this table's `--frames`), checked and capped as any level here. A row's frames are then
this table's, shown after the frames behind the checkpoint ("10,001,157 + 1,000,000"): the
campaign's column of more frames for the levels its recipe nearly clears at the cap, kept
apart from the headline.

With `--model CHECKPOINT` (`evaluate_model_table`) it trains nothing: one trained model,
e.g. one trained on many levels at once (`train --train-levels`), is evaluated on each
level the same way, into a table of the same columns (its frames and minutes on every
row), kept and resumed the same way.

Level lengths: Mario's x at the flagpole, or at a castle's (x-4) axe, read from the game's
level data (`mario_rl.env.level_data`; 1-1's 3161 agrees with a human finish,
`tests/data/1-1-finish.jsonl`). 1-2, 2-2, 4-2 and 7-2 leave their first area by a pipe
into an exit area with the flag (x 3161 there): a clear's x is in that area, a failure's
in the first, so their share of the level is rough. A row also records `measured_flag_x`,
the largest x of a clearing episode.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

CLEARED_RATE = 0.9
"""A level counts as cleared when at least this share of evaluation episodes clear it."""
EVAL_NOOP_MAX = 30
"""Random 0..30 no-op frames at each evaluation start."""
CONFIRM_SEED_OFFSET = 5_000
"""A passing check is confirmed (`--confirm`) on seeds `seed + CONFIRM_SEED_OFFSET`.."""
BUNDLE_SEED_OFFSET = 10_000
"""A bundle is measured on seeds `seed + BUNDLE_SEED_OFFSET`.., none of which a check or a
confirmation used."""
WRITEUP_PASSED: dict[str, bool] = {
    "1-1": True,
    "1-2": True,
    "1-3": False,
    "1-4": True,
    "2-2": True,
    "2-3": False,
    "2-4": True,
    "3-4": True,
    "4-1": True,
    "4-2": True,
    "4-4": False,
    "8-1": False,
    "8-3": False,
    "8-4": False,
}
"""The curiosity write-up's level table (Pathak et al.'s Mario results as that write-up
reports them, not rerun here): whether its agent passed each of its 14 levels."""
COLUMNS = (
    "level",
    "write-up passed",
    "cleared",
    "clear rate",
    "exit",
    "max x",
    "% of level",
    "frames",
    "minutes",
    "bundled: sticky / deterministic / blind replay",
)

console = Console()


def level_length(level: str) -> int | None:
    """Mario's x at the level's end: the flagpole (for a level left by a pipe, in its exit
    area), or a castle's axe; None for the full game."""
    from mario_rl.env.level_data import level_end

    end = level_end(level)
    return None if end is None else end.x


def checkpoint_frames(run_dir: Path) -> int:
    """Frames of a run's newest checkpoint."""
    from mario_rl.runs import list_checkpoints

    return int(list_checkpoints(run_dir / "checkpoints")[-1].stem.removeprefix("frames_"))


def check_report_path(level_runs: Path, frames: int) -> Path:
    """Where the evaluation report of a level's check at `frames` is kept."""
    return level_runs / "checks" / f"frames_{frames}.json"


def confirm_report_path(level_runs: Path, frames: int) -> Path:
    """Where the evaluation report of a check's confirmation (`--confirm`) is kept."""
    return level_runs / "checks" / f"frames_{frames}.confirm.json"


def death_map_path(out: Path, level: str) -> Path:
    """Where a level's death map goes: beside the table, `<out stem>.<level>.png`."""
    return out.with_name(f"{out.stem}.{level}.png")


def training_minutes(run_dir: Path) -> float | None:
    """Training wall-clock minutes of a run over all its resumed pieces (the last
    `wall_s` of its episodes.csv), or None when it logged no episode."""
    episodes = run_dir / "episodes.csv"
    if not episodes.is_file():
        return None
    with episodes.open(newline="") as file:
        rows = list(csv.DictReader(file))
    return float(rows[-1]["wall_s"]) / 60 if rows else None


def frames_behind(run_dir: Path) -> int | None:
    """The frames a run's networks had trained on before it began (its config.json's
    `init_from`, a warm start's), or None for a run from scratch."""
    from mario_rl.runs import RunDir

    if not (run_dir / "config.json").is_file():
        return None
    earlier = RunDir(run_dir).config().get("init_from")
    return None if earlier is None else int(earlier["frames"])


TRAINING_FLAG_EPISODES = 500
"""Training episodes the progress line's flag rate is over (`training_flag_rate`)."""


def training_flag_rate(run_dir: Path, last: int = TRAINING_FLAG_EPISODES) -> tuple[float, int]:
    """The share of a run's last `last` training episodes from the level's start that
    reached the flag, and how many episodes that is (0 without any): a progress signal
    between checks, under training's sticky actions and sampled actions."""
    episodes = run_dir / "episodes.csv"
    if not episodes.is_file():
        return 0.0, 0
    with episodes.open(newline="") as file:
        flags = [row["flag"] in ("1", "True") for row in csv.DictReader(file)][-last:]
    return (sum(flags) / len(flags) if flags else 0.0), len(flags)


def clears_needed(episodes: int) -> int:
    """The fewest clears of `episodes` that count as cleared (`CLEARED_RATE`)."""
    return next(n for n in range(episodes + 1) if n >= CLEARED_RATE * episodes)


def clears_text(clears: int, played: int, episodes: int) -> str:
    """Clears as "clears/episodes"; an evaluation stopped early says how many it played."""
    of = f"{episodes}" if played == episodes else f"{played} played of {episodes}"
    return f"{clears}/{of}"


def check_text(check: dict[str, Any], episodes: int, frames_unit: str = "") -> str:
    """A check as "clears/episodes at frames", with its confirmation when it had one."""
    played = check.get("played", episodes)
    text = f"{clears_text(check['clears'], played, episodes)} at {check['frames']:,}{frames_unit}"
    if "confirm" in check:
        confirm = check["confirm"]
        text += f" (confirm {clears_text(confirm['clears'], confirm['played'], episodes)})"
    return text


def check_passed(check: dict[str, Any], episodes: int, confirm: bool) -> bool:
    """Whether a check clears the level: enough clears and, when the recipe confirms, a
    confirmation with enough clears too (a check made before it asked for one has none)."""
    needed = clears_needed(episodes)
    if check["clears"] < needed:
        return False
    return not confirm or check.get("confirm", {"clears": -1})["clears"] >= needed


def progress_lines(
    levels: list[str], rows: dict[str, Any], runs_dir: str, episodes: int
) -> list[str]:
    """One line: which of `levels` are done, running (a checkpoint but no row; with its
    last check of `episodes` episodes) or pending."""
    from mario_rl.runs import newest_run

    running, pending = [], []
    for level in levels:
        if level in rows:
            continue
        run = newest_run(Path(runs_dir) / level)
        if run is None:
            pending.append(level)
            continue
        checks_path = Path(runs_dir) / level / "checks.json"
        checks = json.loads(checks_path.read_text()) if checks_path.is_file() else []
        last = f"; last check {check_text(checks[-1], episodes)}" if checks else ""
        rate, counted = training_flag_rate(run)
        if counted:
            last += f"; flag in {rate:.0%} of its last {counted} training episodes"
        earlier = frames_behind(run)
        behind = "" if earlier is None else f"{earlier:,} + "
        running.append(f"{level} ({behind}{checkpoint_frames(run):,} frames{last})")
    done = [level for level in levels if level in rows]
    return [
        f"Done: {', '.join(done) or 'none'}. Running: {', '.join(running) or 'none'}. "
        f"Pending: {', '.join(pending) or 'none'}."
    ]


def markdown(
    recipe: dict[str, Any], rows: dict[str, dict[str, Any]], progress: Sequence[str] = ()
) -> str:
    """The table as Markdown, levels in the order they were trained; `progress` lines
    (`progress_lines`) below it."""
    from mario_rl.evaluate import stochasticity_label

    evaluated = (
        f"evaluated over {recipe['episodes']} episodes from the level's start, "
        f"{stochasticity_label(recipe['sticky'], EVAL_NOOP_MAX)}; cleared = at least "
        f"{CLEARED_RATE:.0%} clears"
    )
    if recipe.get("confirm"):
        evaluated += (
            f" of them and of as many episodes again on seeds "
            f"{recipe['seed'] + CONFIRM_SEED_OFFSET}.. (the confirmation, in brackets; a row "
            "without one was decided by its check alone, before the table confirmed)"
        )
    evaluated += "."
    if "model" in recipe:
        trained_on = ", ".join(recipe["trained_on"])
        first = (
            f"One model, `{recipe['model']}` ({recipe['frames']:,} frames on {trained_on}), "
            f"on every level, seed {recipe['seed']}; {evaluated}"
        )
    else:
        first = (
            f"Levels trained with preset `{recipe['preset']}`, {recipe['frames']:,} frames "
            f"each, seed {recipe['seed']}; {evaluated}"
        )
        if "init_from_table" in recipe:
            first = (
                f"Levels trained on from their rows in `{recipe['init_from_table']}` (its "
                f"checkpoint's networks; frames: those behind it + this table's) with preset "
                f"`{recipe['preset']}`, {recipe['frames']:,} more frames at most each, a fresh "
                f"learning-rate anneal over them, seed {recipe['seed']}; {evaluated}"
            )
    lines = [
        first,
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for level, row in rows.items():
        length = level_length(level)
        share = f"{min(row['max_x'] / length, 1.0):.0%}" if length else "?"
        passed = WRITEUP_PASSED.get(level)
        cells = (
            level,
            "-" if passed is None else "yes" if passed else "no",
            "yes" if row["cleared"] else "no",
            clear_rate_text(row),
            exits_text(row.get("exits")),
            str(row["max_x"]),
            share,
            frames_text(row),
            "-" if row["minutes"] is None else f"{row['minutes']:.1f}",
            bundle_text(row.get("bundle")),
        )
        lines.append("| " + " | ".join(cells) + " |")
    if progress:
        lines += ["", *progress]
    return "\n".join(lines) + "\n"


def frames_text(row: dict[str, Any]) -> str:
    """A row's training frames; for a level trained on from another table's checkpoint,
    the frames behind that checkpoint first ("10,001,157 + 1,000,000")."""
    if row.get("init_frames") is None:
        return f"{row['frames']:,}"
    return f"{row['init_frames']:,} + {row['frames']:,}"


def clear_rate_text(row: dict[str, Any]) -> str:
    """A row's clears of its episodes, and its confirmation's when it had one."""
    text = f"{row['clears']}/{row['episodes']}"
    confirm = row.get("confirm")
    if confirm is not None:
        text += f" ({clears_text(confirm['clears'], confirm['played'], row['episodes'])})"
    return text


def exits_text(exits: dict[str, int] | None) -> str:
    """The exits the clearing episodes took: `flag`, or each with its count when several."""
    if exits is None:
        return "?"  # a row from before exits were recorded
    if len(exits) <= 1:
        return next(iter(exits), "-")
    return ", ".join(f"{name} {count}" for name, count in exits.items())


def bundle_text(bundle: dict[str, Any] | None) -> str:
    """A bundled level's fresh-seed clears: sticky / deterministic / blind replay."""
    if bundle is None:
        return "-"
    return " / ".join(
        f"{bundle[key]}/{bundle['episodes']}" if bundle.get(key) is not None else "-"
        for key in ("clears", "deterministic_clears", "control_clears")
    )


def level_command(
    recipe: dict[str, Any], level: str, default_num_envs: int, confirm: bool = False
) -> str:
    """The `mario-rl levels-table` command that trains and checks `level` alone exactly as
    the table did (a level's training does not depend on the other levels); `confirm`:
    its checks were confirmed (a row decided before the recipe confirmed was not)."""
    parts = [
        "mario-rl levels-table",
        f"--preset {recipe['preset']}",
        f"--levels {level}",
        f"--frames {recipe['frames']}",
    ]
    if recipe["check_every"] is not None:
        parts.append(f"--check-every {recipe['check_every']}")
    parts += [
        f"--episodes {recipe['episodes']}",
        f"--seed {recipe['seed']}",
        f"--sticky {recipe['sticky']}",
        f"--max-stuck-steps {recipe['max_stuck_steps']}",
    ]
    if recipe["num_envs"] != default_num_envs:
        parts.append(f"--num-envs {recipe['num_envs']}")
    if confirm:
        parts.append("--confirm")
    if "init_from_table" in recipe:
        parts.append(f"--init-from-table {recipe['init_from_table']}")
    return " ".join(parts)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread meanwhile: evaluation workers take the caller's thread count, and
    after training it is back to one per core, so one per core each would oversubscribe."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def bundle_level(
    level: str,
    row: dict[str, Any],
    recipe: dict[str, Any],
    bundle_dir: Path,
    default_num_envs: int,
    progress: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    """Bundle a cleared level's checkpoint as `bundle_dir/<level>/`, measured on fresh
    seeds by `workers` processes; returns what the row keeps of it."""
    from mario_rl.bundled import bundle_agent, bundle_measure
    from mario_rl.runs import list_checkpoints

    checkpoints = list_checkpoints(Path(row["run_dir"]) / "checkpoints")
    if not checkpoints:
        raise ValueError(
            f"{level}: cleared, but {row['run_dir']} has no checkpoint to bundle (was the "
            "run directory lost?); remove the level's row from the table's .json to train it "
            "again"
        )
    checkpoint = checkpoints[-1]
    if checkpoint_frames(Path(row["run_dir"])) != row["frames"]:
        raise ValueError(
            f"{level}: the newest checkpoint in {row['run_dir']} is {checkpoint.name}, not the "
            f"one checked at {row['frames']:,} frames; bundle it by hand with `mario-rl bundle`"
        )
    seed = recipe["seed"] + BUNDLE_SEED_OFFSET
    measure = bundle_measure(
        level,
        recipe["episodes"],
        seed,
        recipe["sticky"],
        EVAL_NOOP_MAX,
        recipe["max_stuck_steps"],
        progress=progress,
        workers=workers,
    )
    checks = ", ".join(check_text(c, recipe["episodes"]) for c in row["checks"])
    # The row says whether its check was confirmed: one decided before the recipe
    # confirmed was not, whatever the recipe says now.
    confirmed = "confirm" in row
    picked = (
        f"the first checkpoint whose check and its confirmation (seeds "
        f"{recipe['seed'] + CONFIRM_SEED_OFFSET}..) both cleared"
        if confirmed
        else "the first checkpoint whose check cleared"
    )
    commands = [
        level_command(recipe, level, default_num_envs, confirmed),
        f"# {picked.capitalize()} at least {CLEARED_RATE:.0%} of {recipe['episodes']} "
        f"episodes (checks on seeds {recipe['seed']}..): {checkpoint.name} of "
        f"{row['run_dir']}. Checks (clears at frames): {checks}. eval.json measured it "
        f"afresh on seeds {seed}.., which no check or confirmation used.",
    ]
    folder = bundle_agent(checkpoint, level, commands, measure, bundle_dir)
    report = json.loads((folder / "eval.json").read_text())
    deterministic = report.get("deterministic_eval")
    return {
        "folder": str(folder),
        "episodes": report["episodes"],
        "seeds": report["seeds"],
        "clears": report["clears"],
        "deterministic_clears": None if deterministic is None else deterministic["clears"],
        "control_clears": report["control"]["clears"],
        "exits": report["exits"],
    }


def evaluate_level(
    policy: Any,
    level: str,
    recipe: dict[str, Any],
    workers: int,
    stop_after_failures: int | None = None,
    progress: bool = False,
    seed_offset: int = 0,
) -> dict[str, Any]:
    """`policy`'s evaluation on `level` as every table makes it: the recipe's episodes,
    seed (plus `seed_offset`), sticky actions and stuck limit, `EVAL_NOOP_MAX` no-ops, one
    torch thread."""
    from mario_rl.evaluate import evaluate

    with one_torch_thread():
        return evaluate(
            policy,
            level=level,
            episodes=recipe["episodes"],
            seed=recipe["seed"] + seed_offset,
            max_stuck_steps=recipe["max_stuck_steps"],
            noop_max=EVAL_NOOP_MAX,
            sticky=recipe["sticky"],
            workers=workers,
            stop_after_failures=stop_after_failures,
            progress=progress,
        )


def table_row(
    report: dict[str, Any], frames: int, minutes: float | None, death_map: Path
) -> dict[str, Any]:
    """A level's row from its evaluation `report`: what `markdown` shows, and more."""
    cleared_x = [e["max_x"] for e in report["per_episode"] if e["cleared"]]
    return {
        "cleared": report["clear_rate"] >= CLEARED_RATE,
        "clears": report["clears"],
        "episodes": report["episodes"],
        "clear_rate": report["clear_rate"],
        "max_x": report["max_x"],
        "measured_flag_x": max(cleared_x) if cleared_x else None,
        "frames": frames,
        "minutes": None if minutes is None else round(minutes, 2),
        "death_map": str(death_map),
        "exits": report["exits"],
    }


def check_run_has_recipe(run_dir: Path, env: Any, agent: Any) -> None:
    """Refuse to continue a level's run whose saved config (config.json) differs from the
    recipe's env and agent settings as the code defines them now: a preset changed since the
    run began would otherwise go on training it silently under another recipe. Fields added
    since it was saved read as their defaults."""
    from dataclasses import fields

    from mario_rl.env.pipeline import EnvConfig
    from mario_rl.runs import CheckpointError, RunDir

    saved_run = RunDir(run_dir)
    advice = (
        "continue it with the code it began with, or move its folder away to train the "
        "level again under the recipe as it is"
    )
    try:
        saved = {
            "env": saved_run.config_section("env", EnvConfig),
            "agent": saved_run.config_section("agent", type(agent)),
        }
    except CheckpointError as error:  # another algorithm's fields, or a damaged file
        raise ValueError(
            f"{run_dir} was not trained by this recipe's algorithm ({error}): {advice}"
        ) from None
    differences = [
        f"{section}.{field.name} {getattr(saved[section], field.name)!r} there, "
        f"{getattr(now, field.name)!r} now"
        for section, now in (("env", env), ("agent", agent))
        for field in fields(now)
        if getattr(saved[section], field.name) != getattr(now, field.name)
    ]
    if differences:
        raise ValueError(
            f"{run_dir} was trained under other settings than the recipe's now "
            f"({'; '.join(differences)}): {advice}"
        )


def init_from_checkpoints(table: Path, levels: Sequence[str]) -> dict[str, Path]:
    """Each level's checkpoint in another table (`table`: its Markdown or .json): the
    newest checkpoint of the level's row's run, which must be the one its row measured.
    Refuses a table without a row for every level, and a row whose run is lost."""
    from mario_rl.runs import list_checkpoints

    if not levels:  # every level done or begun: the other table is not needed any more
        return {}
    state_path = table.with_suffix(".json")
    if not state_path.is_file():
        raise ValueError(f"--init-from-table {table}: no table state {state_path}")
    rows = json.loads(state_path.read_text())["rows"]
    missing = [level for level in levels if level not in rows]
    if missing:
        raise ValueError(
            f"--init-from-table {table}: no row for {', '.join(missing)} (rows: "
            f"{', '.join(rows) or 'none'}); a level is trained on from its row there"
        )
    checkpoints = {}
    for level in levels:
        run_dir = Path(rows[level]["run_dir"])
        found = list_checkpoints(run_dir / "checkpoints") if run_dir.is_dir() else []
        if not found or checkpoint_frames(run_dir) != rows[level]["frames"]:
            raise ValueError(
                f"--init-from-table {table}: {level}'s row measured the checkpoint at "
                f"{rows[level]['frames']:,} frames of {run_dir}, which "
                f"{'holds another newest one' if found else 'is gone'} (restore that table's "
                "runs first)"
            )
        checkpoints[level] = found[-1]
    return checkpoints


def load_state(state_path: Path, recipe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The rows of a partial table made with `recipe`, or none; refuses another recipe's."""
    if not state_path.is_file():
        return {}
    state = json.loads(state_path.read_text())
    if state["recipe"] != recipe:
        raise ValueError(
            f"{state_path} holds a table made with {state['recipe']}, not {recipe}; "
            "pass another --out, or the same settings to resume it"
        )
    return state["rows"]


def build_table(
    levels: list[str],
    frames: int,
    out: Path,
    preset: str = "ppo-fast",
    seed: int = 0,
    episodes: int = 10,
    max_stuck_steps: int = 1000,
    sticky: float | None = None,
    runs_dir: str = "runs/levels",
    num_envs: int | None = None,
    progress: bool = False,
    check_every: int | None = None,
    bundle_dir: Path | None = None,
    eval_workers: int | None = None,
    confirm: bool = False,
    init_from_table: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Train and evaluate each level not yet in `out`'s state; returns all rows.

    `sticky`: evaluation's sticky-action probability (None: `evaluate.EVAL_STICKY`).
    `check_every`: evaluate every this many frames and stop a level at the first check
    that clears it (at least `CLEARED_RATE` of `episodes`); `frames` is then the cap. None:
    train to `frames`, then evaluate once. `bundle_dir`: bundle each cleared level there
    (`bundle_level`), a cleared row of an earlier piece without a bundle included.
    `confirm`: a check that clears counts only once its checkpoint also clears at least
    `CLEARED_RATE` of as many episodes again on seeds `seed + CONFIRM_SEED_OFFSET`..;
    otherwise training goes on to the next check (the cap's check is the last).
    `eval_workers`: processes playing each evaluation's episodes (None: one per core);
    the table is the same for any number. `init_from_table`: each level's run starts from
    its row's checkpoint in that table (`init_from_checkpoints`) instead of from scratch.
    """
    from mario_rl.agents import load_policy
    from mario_rl.evaluate import EVAL_STICKY, save_report
    from mario_rl.presets import get_preset
    from mario_rl.record import plot_death_map
    from mario_rl.runs import RunConfig, list_checkpoints, newest_run, write_text_atomic
    from mario_rl.training import train

    sticky = EVAL_STICKY if sticky is None else sticky
    eval_workers = eval_workers or os.process_cpu_count() or 1

    chosen = get_preset(preset)
    agent = chosen.agent if num_envs is None else replace(chosen.agent, num_envs=num_envs)
    recipe = {
        "preset": preset,
        "frames": frames,
        "seed": seed,
        "episodes": episodes,
        "max_stuck_steps": max_stuck_steps,
        "sticky": sticky,
        "num_envs": agent.num_envs,
        "check_every": check_every,
    }
    if confirm:  # absent otherwise: tables made before `confirm` resume unchanged
        recipe["confirm"] = True
    if init_from_table is not None:
        recipe["init_from_table"] = str(init_from_table)
    state_path = out.with_suffix(".json")
    rows = load_state(state_path, recipe)
    # Checked before any training; only the levels not begun yet need their checkpoint.
    init_from = (
        {}
        if init_from_table is None
        else init_from_checkpoints(
            init_from_table,
            [
                level
                for level in levels
                if level not in rows and newest_run(Path(runs_dir) / level) is None
            ],
        )
    )

    def write_markdown() -> None:
        write_text_atomic(
            out, markdown(recipe, rows, progress_lines(levels, rows, runs_dir, episodes))
        )

    def save() -> None:
        write_text_atomic(state_path, json.dumps({"recipe": recipe, "rows": rows}, indent=2) + "\n")
        write_markdown()

    # Before the first level, so that a stop during it is continued under this recipe only
    # (another --frames would change the stopped run's learning-rate schedule).
    save()

    def bundle(level: str) -> None:
        if bundle_dir is None or not rows[level]["cleared"] or "bundle" in rows[level]:
            return
        console.print(f"{level}: cleared; bundling it in {bundle_dir / level}")
        with one_torch_thread():
            rows[level]["bundle"] = bundle_level(
                level,
                rows[level],
                recipe,
                bundle_dir,
                chosen.agent.num_envs,
                progress,
                eval_workers,
            )
        save()
        kept = rows[level]["bundle"]
        console.print(f"{level}: bundled, {kept['clears']}/{kept['episodes']} on fresh seeds")

    # A stop (Ctrl-C, SIGTERM) leaves the progress line saying where training stopped:
    # the level begun since the last check is running, not pending.
    try:
        for level in levels:
            if level in rows:
                console.print(f"{level}: already in {state_path}, skipped")
                bundle(level)
                continue
            write_markdown()
            level_runs = Path(runs_dir) / level
            stopped = newest_run(level_runs)
            env = replace(chosen.env, level=level)
            if stopped is not None:
                check_run_has_recipe(stopped, env, agent)
                if init_from_table is not None and frames_behind(stopped) is None:
                    raise ValueError(
                        f"{stopped} was trained from scratch, not on from {init_from_table}: "
                        "move it away, or pass another --runs-dir"
                    )
                console.print(f"{level}: continuing {stopped} from its newest checkpoint")
            start = time.perf_counter()
            # Checks survive a stop: a checkpoint a stopped piece left unchecked is checked
            # before any more training, and one whose check ended the level only re-evaluated.
            checks_path = level_runs / "checks.json"
            checks = json.loads(checks_path.read_text()) if checks_path.is_file() else []
            # The frames the piece in training aims at: a checkpoint short of it was left by a
            # stop, and training goes on to the target before the next check, so the checks
            # stay on the grid of `check_every` however often the command is stopped.
            piece_path = level_runs / "piece.json"
            while True:
                # A check that cleared before the recipe confirmed is made again, confirmed.
                final = {
                    c["frames"]: check_passed(c, episodes, confirm)
                    for c in checks
                    if not (
                        confirm and "confirm" not in c and c["clears"] >= clears_needed(episodes)
                    )
                }
                trained = 0 if stopped is None else checkpoint_frames(stopped)
                piece = json.loads(piece_path.read_text())["target"] if piece_path.is_file() else 0
                interrupted = stopped is not None and trained < min(piece, frames)
                if (
                    stopped is None
                    or interrupted
                    or (trained in final and not final[trained] and trained < frames)
                ):
                    if interrupted:
                        target = min(piece, frames)
                    elif check_every is None:
                        target = frames
                    else:
                        target = min(frames, (trained // check_every + 1) * check_every)
                    level_runs.mkdir(parents=True, exist_ok=True)
                    write_text_atomic(piece_path, json.dumps({"target": target}) + "\n")
                    # The schedules span the level's cap, not the piece: each piece would
                    # otherwise anneal the learning rate to 0 at its own end.
                    run = RunConfig(
                        seed=seed,
                        frames=target,
                        schedule_frames=frames,
                        runs_dir=str(level_runs),
                        progress=progress,
                    )
                    # A level's first piece starts from the other table's checkpoint.
                    warm = init_from.get(level) if stopped is None else None
                    stopped = train(run, env, agent, resume=stopped, preset=preset, init_from=warm)
                run_dir, trained = stopped, checkpoint_frames(stopped)
                checkpoint = list_checkpoints(run_dir / "checkpoints")[-1]
                # Past this many failures the check cannot clear; the cap's check plays all.
                can_fail = episodes - clears_needed(episodes)
                policy = load_policy(checkpoint)
                report = evaluate_level(
                    policy,
                    level,
                    recipe,
                    eval_workers,
                    stop_after_failures=None if trained >= frames else can_fail + 1,
                )
                check = {
                    "frames": trained,
                    "clears": report["clears"],
                    "played": report["episodes"],
                }
                # The whole report, per episode: where a check's failures ended (`plot_death_map`).
                save_report(report, check_report_path(level_runs, trained))
                if confirm and report["clears"] >= clears_needed(episodes):
                    confirmation = evaluate_level(
                        policy,
                        level,
                        recipe,
                        eval_workers,
                        stop_after_failures=can_fail + 1,
                        seed_offset=CONFIRM_SEED_OFFSET,
                    )
                    check["confirm"] = {
                        "clears": confirmation["clears"],
                        "played": confirmation["episodes"],
                    }
                    save_report(confirmation, confirm_report_path(level_runs, trained))
                # A stop after this write and before the row's leaves the check here, and the
                # run again checks the same checkpoint: that check replaces this one.
                checks = [*(c for c in checks if c["frames"] != trained), check]
                write_text_atomic(checks_path, json.dumps(checks) + "\n")
                # The progress line says this check (and the flag rate of training so far).
                write_markdown()
                console.print(f"{level}: cleared {check_text(check, episodes, ' frames')}")
                if check_passed(check, episodes, confirm) or trained >= frames:
                    break
            minutes = training_minutes(run_dir) or (time.perf_counter() - start) / 60
            death_map = plot_death_map(report, death_map_path(out, level))
            rows[level] = {
                **table_row(report, trained, minutes, death_map),
                # A check that cleared but whose confirmation did not (at the cap) is no clear.
                "cleared": check_passed(check, episodes, confirm),
                **({"confirm": check["confirm"]} if "confirm" in check else {}),
                "checks": checks,
                "run_dir": str(run_dir),
            }
            if (earlier := frames_behind(run_dir)) is not None:
                rows[level]["init_frames"] = earlier
            save()
            console.print(
                f"{level}: cleared {clear_rate_text(rows[level])}, max x {report['max_x']}"
            )
            bundle(level)
    except KeyboardInterrupt:
        try:
            write_markdown()
        except OSError as error:  # a full disk must not turn the stop into another error
            console.print(f"{out}: progress line not refreshed ({error})")
        raise
    write_markdown()
    return rows


def evaluate_model_table(
    model: Path,
    levels: list[str],
    out: Path,
    seed: int = 0,
    episodes: int = 10,
    max_stuck_steps: int = 1000,
    sticky: float | None = None,
    progress: bool = False,
    eval_workers: int | None = None,
) -> dict[str, dict[str, Any]]:
    """One trained model (e.g. trained on many levels at once, `train --train-levels`)
    evaluated on each of `levels` as `build_table` evaluates a level's own model, into a
    table of the same columns; returns all rows.

    A row's frames and minutes are the model's (the same on every row). Progress is kept
    in `out`'s .json as `build_table` keeps it, so a stopped table resumes at the level it
    was on; a state made with another model or evaluation is refused.
    """
    from mario_rl.agents import load_policy
    from mario_rl.evaluate import EVAL_STICKY, save_report
    from mario_rl.record import plot_death_map
    from mario_rl.runs import load_checkpoint, resolve_checkpoint, write_text_atomic

    sticky = EVAL_STICKY if sticky is None else sticky
    eval_workers = eval_workers or os.process_cpu_count() or 1
    if model.is_dir() and (model / "model.pt").is_file():  # a bundle's folder
        model = model / "model.pt"
    model = resolve_checkpoint(model)
    policy = load_policy(model)
    config = policy.env_config
    frames = int(load_checkpoint(model)["counters"]["frames"])
    recipe = {
        "model": str(model),
        "frames": frames,
        "trained_on": list(dict.fromkeys([config.level, *config.levels])),
        # A bundle keeps the acting it was measured by, which evaluation then uses.
        "acting": "sampled" if policy.sample else "greedy",
        "seed": seed,
        "episodes": episodes,
        "max_stuck_steps": max_stuck_steps,
        "sticky": sticky,
    }
    state_path = out.with_suffix(".json")
    rows = load_state(state_path, recipe)
    # checkpoints/frames_N.pt of a run: its episodes.csv says how long it trained.
    run_dir = model.parent.parent if model.parent.name == "checkpoints" else None
    minutes = training_minutes(run_dir) if run_dir is not None else None

    def save() -> None:
        write_text_atomic(state_path, json.dumps({"recipe": recipe, "rows": rows}, indent=2) + "\n")
        pending = [level for level in levels if level not in rows]
        done = [level for level in levels if level in rows]
        line = f"Done: {', '.join(done) or 'none'}. Pending: {', '.join(pending) or 'none'}."
        write_text_atomic(out, markdown(recipe, rows, [line]))

    save()
    for level in levels:
        if level in rows:
            console.print(f"{level}: already in {state_path}, skipped")
            continue
        report = evaluate_level(policy, level, recipe, eval_workers, progress=progress)
        save_report(report, out.with_name(f"{out.stem}.{level}.json"))
        death_map = plot_death_map(report, death_map_path(out, level))
        rows[level] = table_row(report, frames, minutes, death_map)
        save()
        console.print(f"{level}: cleared {report['clears']}/{episodes}, max x {report['max_x']}")
    return rows
