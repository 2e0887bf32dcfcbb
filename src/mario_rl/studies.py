"""Parameter studies: one agent trained under one run config with some of its settings
changed, the curves plotted together (the CS229 report's studies of alpha and gamma)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from mario_rl.agents.cs229 import (
    STUDY_VARIANTS,
    CS229Config,
    Evaluation,
    plot_curves,
    read_evaluations,
)
from mario_rl.env.levels import parse_level
from mario_rl.env.pipeline import EnvConfig
from mario_rl.runs import RunConfig
from mario_rl.training import train


def run_study(
    level: str,
    base: CS229Config,
    run: RunConfig,
    out: Path,
    variants: dict[str, dict[str, Any]] = STUDY_VARIANTS,
) -> tuple[Path, dict[str, Path]]:
    """Train each variant (fields changed from `base`) under the same run settings and plot
    their curves together, as the report does; returns the plot and each run directory."""
    run_dirs: dict[str, Path] = {}
    series: dict[str, list[Evaluation]] = {}
    for name, changes in variants.items():
        run_dirs[name] = train(
            replace(run, runs_dir=str(out)), EnvConfig(level=level), replace(base, **changes)
        )
        series[name] = read_evaluations(run_dirs[name])
    plot = plot_curves(
        series,
        out / f"study_{parse_level(level).name}.png",
        f"CS229 studies on {level}: {base.episodes} training episodes, {base.eval_episodes} "
        f"evaluation episodes every {base.eval_every}",
    )
    return plot, run_dirs
