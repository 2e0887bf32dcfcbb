"""A video (MP4) or GIF of one evaluation episode, in full colour; the death map of an
evaluation (where along the level its episodes ended)."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from mario_rl.agents import Policy
from mario_rl.evaluate import (
    ANOTHER_AREA,
    DEATH_MAP_BAND_PX,
    EVAL_STICKY,
    MAP_ENDINGS,
    acting_rng,
    ended_in_another_area,
    eval_env_config,
    policy_actor,
    run_episode,
    stochasticity_label,
    where_episodes_ended,
)

NES_FPS = 60
VIDEO_FORMATS = (".mp4", ".gif")


def record(
    policy: Policy,
    out: str | Path,
    level: str | None = None,
    seed: int = 0,
    epsilon: float = 0.0,
    noop_max: int = 30,
    max_stuck_steps: int = 250,
    sticky: float = EVAL_STICKY,
) -> dict:
    """Play one evaluation episode and write one full-colour frame per agent step to `out`.

    The video plays at real game speed (60 / frame_skip frames per second). The episode is
    played as evaluation plays it, sticky actions included (`sticky=0`: deterministic).
    """
    out = Path(out)
    if out.suffix.lower() not in VIDEO_FORMATS:
        raise ValueError(f"out: expected a file ending in .mp4 or .gif, got {out.name!r}")
    config = eval_env_config(policy.env_config, level, noop_max, max_stuck_steps, sticky)
    env = policy.make_env(config, seed)
    # The episode evaluation seeds `seed`, sampled or epsilon-greedy actions included.
    policy.rng = acting_rng(seed)
    screens: list[np.ndarray] = []
    episode = run_episode(policy_actor(policy, epsilon), env, seed, frames=screens)
    episode.pop("actions")
    env.close()
    fps = NES_FPS / config.frame_skip
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        imageio.mimsave(out, screens, duration=1000 / fps, loop=0)
    else:
        imageio.mimsave(out, screens, fps=fps, macro_block_size=16)
    return {**episode, "video": str(out), "video_frames": len(screens), "fps": fps}


ENDING_COLOURS = {
    "died": "tab:red",  # a report from before episodes kept how a life was lost
    "died: fell": "darkred",
    "died: hit": "tab:blue",
    "died: out of time": "tab:pink",
    "stuck": "tab:orange",
    "replay ran out": "tab:gray",
    "looped": "tab:purple",
}
"""One colour per ending in every death map, so two maps compare at a glance."""


def end_marker(level: str, flag_x: int | None = None) -> tuple[int, str] | None:
    """The death map's mark of the level's end, as (x, label): the flag at `flag_x` if
    given, else the level's flagpole (said to be in the exit area for a level left by a
    pipe) or axe; None for the full game."""
    from mario_rl.env.level_data import level_end

    if flag_x is not None:
        return flag_x, f"the flag (x {flag_x})"
    end = level_end(level)
    if end is None:
        return None
    where = ", in the exit area" if end.exit_area is not None else ""
    return end.x, f"the {end.kind} (x {end.x}{where})"


def plot_death_map(
    report: dict,
    out: str | Path,
    band_px: int = DEATH_MAP_BAND_PX,
    flag_x: int | None = None,
) -> Path:
    """A picture (PNG, SVG or PDF) of where the episodes of an evaluation report that did
    not clear ended: one stacked bar per `band_px`-wide band of the level's x, by how they
    ended (died: fell, hit or out of time; stuck; looped by a castle; or, for a
    blind-replay control merged over its report's conditions, out of actions), the x that
    the cleared episodes reached, and the level's end: the flag at `flag_x` if given, else
    the level's flagpole or axe from the game's level data (`mario_rl.env.level_data`; for
    a level left by a pipe, the flag in its exit area, whose x is not the first area's)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    end = end_marker(report["level"], flag_x)

    out = Path(out)
    bands = where_episodes_ended(report, band_px)
    figure = Figure(figsize=(10, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    starts = list(bands)
    bottom = np.zeros(len(starts))
    kinds = [(ending, elsewhere) for elsewhere in (False, True) for ending in MAP_ENDINGS]
    for ending, elsewhere in kinds:
        label = ending + ANOTHER_AREA if elsewhere else ending
        counts = np.array([bands[start][label] for start in starts], float)
        if counts.any():
            axes.bar(
                starts,
                counts,
                band_px * 0.9,
                bottom,
                align="edge",
                label=label + (" (that area's x)" if elsewhere else ""),
                color=ENDING_COLOURS[ending],
                hatch="//" if elsewhere else None,
                edgecolor="white" if elsewhere else None,
            )
            bottom += counts
    cleared = [e for e in report["per_episode"] if e["cleared"]]
    cleared_x = sorted({e["max_x"] for e in cleared})
    # A level left by a pipe (1-2) is cleared in its exit area, whose x is not the first
    # area's; a warp's clear ends in the first area (its max x is there).
    elsewhere = any(e.get("exit") == "flag" and ended_in_another_area(e) for e in cleared)
    for index, x in enumerate(cleared_x):
        label = None
        if index == 0:
            label = "x reached by cleared episodes" + (ANOTHER_AREA if elsewhere else "")
        axes.axvline(x, color="black", linestyle="--", label=label)
    if end is not None:
        axes.axvline(end[0], color="tab:green", linewidth=2, label=end[1])
    failed = report["episodes"] - report["clears"]
    conditions = stochasticity_label(report["sticky_probability"], report["noop_max"])
    axes.set_title(
        f"{report['level']}, {report['algo']} ({report['acting']}), {conditions}: "
        f"{report['clears']}/{report['episodes']} cleared; where the other {failed} ended",
        fontsize="medium",
    )
    axes.set_xlabel(f"Mario's x (pixels from the level's start; bands of {band_px})")
    axes.set_ylabel("episodes")
    axes.set_xlim(0, max([report["max_x"], *cleared_x, end[0] if end else 0]) + band_px)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3, axis="y")
    if starts or cleared_x or end is not None:
        axes.legend(fontsize="small")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    return out
