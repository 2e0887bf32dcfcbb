"""Learning curves of several runs in one PNG: mean and spread across seeds, per group.

Runs are grouped by their preset (or algo when they have none), so `mario-rl compare
runs/*tutorial-dqn* runs/*tutorial-ddqn*` draws the write-ups' DQN-vs-DDQN plot. Random-agent
runs (`train --algo random`) form their own group, named after the pipeline they played.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

METRICS = {"return": "episode return", "max_x": "furthest x", "flag": "flag rate"}
"""`--metric` choices: episodes.csv columns and their axis labels."""
GRID_POINTS = 200
"""Points on the common frame axis curves are interpolated onto."""


def load_curve(run_dir: Path, metric: str, window: int) -> tuple[str, np.ndarray, np.ndarray]:
    """(group label, frames, rolling mean of `metric` over `window` episodes) of one run."""
    from mario_rl.runs import run_label  # here: runs imports torch, which plotting does not need

    config_path, csv_path = run_dir / "config.json", run_dir / "episodes.csv"
    if not config_path.is_file() or not csv_path.is_file():
        raise ValueError(f"{run_dir}: expected a run directory with config.json and episodes.csv")
    config = json.loads(config_path.read_text())
    with csv_path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        raise ValueError(f"{run_dir}: no finished episodes yet, nothing to plot")
    frames = np.array([int(r["frames"]) for r in rows], np.float64)
    values = np.array([float(r[metric]) for r in rows], np.float64)
    kernel = np.ones(min(window, len(values)))
    smoothed = np.convolve(values, kernel, "full")[: len(values)]
    counts = np.convolve(np.ones_like(values), kernel, "full")[: len(values)]
    return run_label(config, run_dir.name), frames, smoothed / counts


def compare(
    run_dirs: list[str | Path], out: str | Path, metric: str = "return", window: int = 20
) -> dict[str, Any]:
    """Plot every group's mean curve with its min-max band across runs; returns a summary."""
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for run_dir in run_dirs:
        label, frames, curve = load_curve(Path(run_dir), metric, window)
        groups[label].append((frames, curve))
    figure = Figure(figsize=(8, 5))
    axis = figure.subplots()
    summary: dict[str, Any] = {}
    for label, curves in sorted(groups.items()):
        end = min(frames[-1] for frames, _ in curves)
        start = max(frames[0] for frames, _ in curves)
        grid = np.linspace(start, max(end, start + 1), GRID_POINTS)
        stacked = np.stack([np.interp(grid, frames, curve) for frames, curve in curves])
        mean = stacked.mean(axis=0)
        axis.plot(grid, mean, label=f"{label} ({len(curves)} run{'s' * (len(curves) > 1)})")
        if len(curves) > 1:
            axis.fill_between(grid, stacked.min(axis=0), stacked.max(axis=0), alpha=0.25)
        summary[label] = {"runs": len(curves), "frames": float(end), "final": float(mean[-1])}
    axis.set_xlabel("emulator frames")
    axis.set_ylabel(f"{METRICS[metric]} (mean of last {window} episodes)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    return summary
