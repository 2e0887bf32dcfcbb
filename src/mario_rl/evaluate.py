"""Evaluation separate from training: greedy episodes from the level's start, random no-ops.

A level is cleared when the flag is reached or the stage changes (DESIGN.md, section 4).
Every episode starts with a random 0..`noop_max` no-op frames, so a memorised button
sequence cannot pass for a policy, and ends early (truncated) after `max_stuck_steps`
agent steps without a new best x: a deterministic policy stuck that long never recovers.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import replace
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mario_rl.agents import Policy
from mario_rl.env.levels import parse_level
from mario_rl.env.pipeline import EnvConfig


def eval_env_config(
    config: EnvConfig, level: str | None, noop_max: int, max_stuck_steps: int
) -> EnvConfig:
    """The training pipeline with evaluation's starts and ends: the true game, no shaping."""
    return replace(
        config,
        level=parse_level(level or config.level).name,
        noop_max=noop_max,
        no_progress_steps=max_stuck_steps,
        sticky_probability=0.0,
        end_on_life_loss=False,
    )


def run_episode(
    policy: Policy, env: Any, seed: int, epsilon: float, frames: list[np.ndarray] | None = None
) -> dict[str, Any]:
    """Play one episode; returns its numbers. Appends full-colour screens to `frames` if given."""
    obs, info = env.reset(seed=seed)
    start_stage = (info["world"], info["stage"])
    start_frames, start_time, noops = info["frames"], info["time"], info.get("noops", 0)
    cleared_at: dict[str, int] | None = None
    if frames is not None:
        frames.append(env.unwrapped.screen_rgb())
    while True:
        action = int(policy.act(obs[None], epsilon)[0])
        obs, _, terminated, truncated, info = env.step(action)
        if frames is not None:
            frames.append(env.unwrapped.screen_rgb())
        stage_changed = (info["world"], info["stage"]) != start_stage
        if cleared_at is None and (info["flag_get"] or stage_changed):
            cleared_at = {
                "frames": info["frames"] - start_frames,
                "time": start_time - info["time"],
            }
        if terminated or truncated:
            break
    episode = info["episode"]
    return {
        "seed": seed,
        "cleared": cleared_at is not None,
        "max_x": int(episode["max_x"]),
        "return": float(episode["return"]),
        "frames": int(episode["frames"]) - start_frames,
        "frames_to_clear": cleared_at["frames"] if cleared_at else None,
        "game_time_to_clear": cleared_at["time"] if cleared_at else None,
        "score": int(episode["score"]),
        "noops": int(noops),
        "stuck": bool(info.get("no_progress", False)),
    }


def machine_summary() -> dict[str, Any]:
    """Where an evaluation ran: enough to tell two reports' machines apart."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mario_rl": version("mario-rl"),
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate(
    policy: Policy,
    level: str | None = None,
    episodes: int = 20,
    epsilon: float = 0.0,
    noop_max: int = 30,
    seed: int = 0,
    max_stuck_steps: int = 250,
    progress: bool = False,
    sample: bool | None = None,
) -> dict[str, Any]:
    """Play `episodes` evaluation episodes; returns the summary and each episode's numbers.

    `sample` True draws each action from a stochastic policy, False takes the greedy one,
    None keeps the policy's own setting (a bundled agent's is the one it was measured by).
    """
    if episodes < 1:
        raise ValueError(f"episodes: expected a positive integer, got {episodes}")
    if sample is not None:
        policy.set_sampling(sample)
    config = eval_env_config(policy.env_config, level, noop_max, max_stuck_steps)
    env = policy.make_env(config, seed)
    policy.rng = np.random.default_rng(seed)
    results = [
        run_episode(policy, env, seed + index, epsilon)
        for index in tqdm(range(episodes), unit="episode", disable=not progress)
    ]
    env.close()
    cleared = [r for r in results if r["cleared"]]
    return {
        "checkpoint": policy.checkpoint_path,
        "algo": policy.algo,
        "level": config.level,
        "episodes": episodes,
        "epsilon": epsilon,
        "sample": policy.sample,
        "noop_max": noop_max,
        "seed": seed,
        "max_stuck_steps": max_stuck_steps,
        "machine": machine_summary(),
        "clears": len(cleared),
        "clear_rate": len(cleared) / episodes,
        "mean_x": _mean([r["max_x"] for r in results]),
        "max_x": max(r["max_x"] for r in results),
        "mean_frames_to_clear": _mean([r["frames_to_clear"] for r in cleared]),
        "mean_game_time_to_clear": _mean([r["game_time_to_clear"] for r in cleared]),
        "mean_score": _mean([r["score"] for r in results]),
        "mean_return": _mean([r["return"] for r in results]),
        "per_episode": results,
    }


def default_report_path(checkpoint: str, level: str) -> Path:
    """`<run>/eval/<level>__<checkpoint name>__<time>.json` beside the checkpoint's run."""
    path = Path(checkpoint)
    run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return run / "eval" / f"{level}__{path.stem}__{stamp}.json"


def save_report(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def summary_line(report: dict[str, Any]) -> str:
    """One line a person reads: clear rate first."""
    frames = report["mean_frames_to_clear"]
    time_text = report["mean_game_time_to_clear"]
    clear_text = (
        f", mean {frames:.0f} frames / {time_text:.0f} game-clock units to clear"
        if frames is not None
        else ""
    )
    return (
        f"{report['algo']} on {report['level']}: cleared {report['clears']}/"
        f"{report['episodes']} ({report['clear_rate']:.0%}), mean x {report['mean_x']:.0f}, "
        f"max x {report['max_x']}, mean score {report['mean_score']:.0f}{clear_text}"
    )
