"""Parameter studies: one agent trained under one run config with some of its settings
changed, on several seeds, the curves plotted together (the CS229 report's studies of
alpha and gamma).

A study runs in pieces, as the level campaign does: `<out>/study.json` records the runs
that finished, a run that was stopped continues from its newest checkpoint
(`<out>/<variant>__seed<N>/`), and a study is refused when asked to continue with other
settings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from mario_rl.agents.cs229 import (
    REPORT_STUDIES,
    STUDY_VARIANTS,
    CS229Config,
    Evaluation,
    plot_curves,
    read_evaluations,
)
from mario_rl.env.levels import parse_level
from mario_rl.env.pipeline import EnvConfig
from mario_rl.runs import RunConfig, keep_copy_of, newest_run, write_text_atomic
from mario_rl.training import train

STUDY_FILE = "study.json"
"""The study's settings and its finished runs, in its folder."""


def run_name(variant: str, seed: int) -> str:
    """The folder of one variant's run on one seed, inside the study's folder."""
    return f"{variant}__seed{seed}"


def run_study(
    level: str,
    base: CS229Config,
    run: RunConfig,
    out: Path,
    variants: Sequence[str] = REPORT_STUDIES,
    seeds: Sequence[int] = (0,),
    keep: Path | None = None,
) -> tuple[Path, dict[str, list[Path]]]:
    """Train each variant (`STUDY_VARIANTS`: fields changed from `base`) on each seed
    under the same run settings, and plot their curves together (mean and range over the
    seeds); returns the plot and each variant's run directories, in seed order. Runs
    `study.json` lists as finished are not trained again.

    With `keep`, a folder that outlives the machine, `keep` mirrors `out` as far as a
    continuation needs: `study.json`, and each run's kept copy (`RunConfig.keep_copy`) in
    its own `<variant>__seed<N>/` folder, so copying `keep` into an empty `out` continues
    the study."""
    unknown = [name for name in variants if name not in STUDY_VARIANTS]
    if unknown or not variants:
        raise ValueError(
            f"variants: expected some of {', '.join(STUDY_VARIANTS)}, got {list(variants)}"
        )
    if keep is not None and (
        keep.resolve().is_relative_to(out.resolve()) or out.resolve().is_relative_to(keep.resolve())
    ):
        raise ValueError(
            f"keep: {keep} and the study's folder {out} hold one another; keep its copy in a "
            "folder of its own"
        )
    level = parse_level(level).name
    # Through JSON, as the state file keeps it, so that tuples compare as lists.
    settings = json.loads(
        json.dumps(
            {
                "level": level,
                "base": asdict(base),
                "variants": list(variants),
                "seeds": list(seeds),
                "minutes": run.minutes,
            }
        )
    )
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STUDY_FILE
    # Finished runs by name: their run directory relative to `out`, so that the study's
    # folder may be moved, or continued from another working directory.
    finished: dict[str, str] = {}
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        if state["settings"] != settings:
            raise ValueError(
                f"{state_path} holds a study with other settings ({state['settings']}); "
                "pass another folder, or the same settings to continue it"
            )
        finished = state["finished"]
    kept_state = None if keep is None else keep / STUDY_FILE
    if kept_state is not None and kept_state.is_file():
        kept = json.loads(kept_state.read_text())
        if kept["settings"] != settings:
            raise ValueError(
                f"{kept_state} keeps a study with other settings; keep each study's copy in "
                "a folder of its own"
            )
        lacking = sorted(set(kept["finished"]) - set(finished))
        if lacking:
            raise ValueError(
                f"{keep} keeps finished runs {out} lacks ({', '.join(lacking)}); copy them "
                f"back first (mkdir -p {out} && cp -r {keep}/. {out}/)"
            )

    def save() -> None:
        state = json.dumps({"settings": settings, "finished": finished}, indent=2) + "\n"
        write_text_atomic(state_path, state)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            write_text_atomic(keep / STUDY_FILE, state)

    # Runs finished before the study was kept elsewhere: kept now, or a continuation from
    # the copy would find them listed and missing.
    for name, path in finished.items():
        if keep is not None and newest_run(keep / name) is None:
            keep_copy_of(out / path, keep / name)
    # Before the first run, so that a stopped run is continued under these settings only.
    save()
    # Seed by seed, every variant on each: a study stopped part-way has paired runs.
    for seed in seeds:
        for variant in variants:
            name = run_name(variant, seed)
            if name in finished:
                continue
            folder = out / name
            kept = None if keep is None else str(keep / name)
            run_dir = train(
                replace(run, seed=seed, runs_dir=str(folder), keep_copy=kept),
                EnvConfig(level=level),
                replace(base, **STUDY_VARIANTS[variant][1]),
                resume=newest_run(folder),
            )
            if keep is not None:
                # Again, so that a copy the run could not refresh (it warned and went on)
                # stops the study here, before the copy lists the run as finished.
                keep_copy_of(run_dir, keep / name)
            finished[name] = os.path.relpath(run_dir, out)
            save()
    run_dirs = {
        variant: [out / finished[run_name(variant, seed)] for seed in seeds] for variant in variants
    }
    series: dict[str, list[list[Evaluation]]] = {
        STUDY_VARIANTS[variant][0]: [read_evaluations(path) for path in paths]
        for variant, paths in run_dirs.items()
    }
    seeds_text = f", {len(seeds)} seeds" if len(seeds) > 1 else ""
    plot = plot_curves(
        series,
        out / f"study_{level}.png",
        f"CS229 studies on {level}: {base.episodes} training episodes{seeds_text}, "
        f"{base.eval_episodes} evaluation episodes every {base.eval_every}",
        eval_every=base.eval_every,
    )
    return plot, run_dirs


def summary(run_dirs: Sequence[Path]) -> dict[str, Any] | None:
    """A variant's numbers over its seeds: each run's last and best evaluation win rate,
    and the last evaluation's mean win rate, score, kill % and share of decisions in unseen
    states; None without evaluations."""
    runs = [read_evaluations(path) for path in run_dirs]
    if not all(runs):
        return None
    last = [run[-1] for run in runs]
    return {
        "runs": len(runs),
        "last_win_rates": [e.win_rate for e in last],
        "best_win_rates": [max(e.win_rate for e in run) for run in runs],
        "mean_last_win_rate": sum(e.win_rate for e in last) / len(last),
        "mean_last_score": sum(e.score for e in last) / len(last),
        "mean_last_kill_pct": sum(e.kill_pct for e in last) / len(last),
        "mean_last_unseen_share": sum(e.unseen_share for e in last) / len(last),
    }
