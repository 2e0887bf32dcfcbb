"""The write-ups' random agent: uniform random actions, reported in frames and furthest x."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tqdm import tqdm

from mario_rl.env.pipeline import EnvConfig, make_env


@dataclass(frozen=True)
class RandomRunResult:
    steps: int
    frames: int
    episodes: int
    seconds: float
    best_x: int
    flags: int

    @property
    def frames_per_second(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def run_random_agent(
    config: EnvConfig, steps: int, seed: int = 0, progress: bool = True
) -> RandomRunResult:
    """Play `steps` uniformly random agent steps through the full pipeline of `config`."""
    if steps < 1:
        raise ValueError(f"steps: expected a positive number of agent steps, got {steps}")
    env = make_env(config, seed=seed)
    _, info = env.reset(seed=seed)
    frames_done = 0
    episodes = flags = 0
    best_x = info["x_pos"]
    start = time.perf_counter()
    with tqdm(total=steps, unit="step", disable=not progress, dynamic_ncols=True) as bar:
        for step in range(1, steps + 1):
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            best_x = max(best_x, info["x_pos"])
            if terminated or truncated:
                episodes += 1
                flags += int(info["flag_get"])
                frames_done += info["frames"]
                _, info = env.reset()
            bar.update()
            if step % 100 == 0 or step == steps:
                frames = frames_done + env.unwrapped.frames
                bar.set_postfix(
                    frames=frames,
                    fps=f"{frames / (time.perf_counter() - start):.0f}",
                    best_x=best_x,
                    episodes=episodes,
                    refresh=False,
                )
    seconds = time.perf_counter() - start
    frames = frames_done + env.unwrapped.frames
    env.close()
    return RandomRunResult(steps, frames, episodes, seconds, best_x, flags)
