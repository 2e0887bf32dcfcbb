"""A tiny problem a DQN must learn in tests: walk right along a corridor."""

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from mario_rl.env.wrappers import EpisodeStatistics


class ChainEnv(gym.Env):
    """A corridor of `length` cells; the goal is at one end, drawn at random each episode.

    Mario-like in miniature: start in the middle, +1 for reaching the goal end, 0 for the
    other end (both end the episode), truncated after `limit` steps. Actions: 0 left,
    1 right. Observations: the one-hot cell followed by a one-hot goal side, so no single
    fixed action solves it: the agent must read where the goal is.
    `reset(options={"goal": 0 or 1})` picks the side (0 left, 1 right).
    The infos carry what `EpisodeStatistics` and the frame counter read.
    """

    def __init__(self, length: int = 7, limit: int = 20) -> None:
        self.length, self.limit = length, limit
        self.observation_space = spaces.Box(0.0, 1.0, (length + 2,), np.float32)
        self.action_space = spaces.Discrete(2)

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length + 2, np.float32)
        obs[self.cell] = 1.0
        obs[self.length + self.goal] = 1.0
        return obs

    def _info(self) -> dict[str, Any]:
        flag = self.cell == self.goal * (self.length - 1)
        return {
            "x_pos": self.cell,
            "flag_get": flag,
            "time": self.limit - self.t,
            "score": 0,
            "frames": self.t,
            "world": 1,
            "stage": 1,
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.goal = int((options or {}).get("goal", self.np_random.integers(2)))
        self.cell, self.t = self.length // 2, 0
        return self._obs(), self._info()

    def step(self, action: int):
        self.t += 1
        self.cell += 1 if action == 1 else -1
        terminated = self.cell in (0, self.length - 1)
        reward = 1.0 if self.cell == self.goal * (self.length - 1) else 0.0
        return self._obs(), reward, terminated, self.t >= self.limit, self._info()


def chain_envs(num_envs: int, seed: int) -> SyncVectorEnv:
    envs = SyncVectorEnv(
        [lambda: EpisodeStatistics(ChainEnv()) for _ in range(num_envs)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    envs.reset(seed=seed)
    return envs
