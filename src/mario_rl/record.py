"""A video (MP4) or GIF of one evaluation episode, in full colour."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from mario_rl.agents import Policy
from mario_rl.evaluate import EVAL_STICKY, eval_env_config, policy_actor, run_episode

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
    policy.rng = np.random.default_rng(seed)
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
