"""The grid world of the PyTorch DDQN tutorial, as a Gymnasium env.

Andrew Grebenisan, "Play Super Mario Bros with a Double Deep Q-Network" (Paperspace blog,
https://blog.paperspace.com/building-double-deep-q-network-super-mario-bros/), section
"What is reinforcement learning?": a 3x3 grid, the start top-left and the end
bottom-right, moves in 8 directions, reward -1 per move and 0 for the move that reaches
the end. The best path is the diagonal: return -1, against -3 or worse for any other.

Observations are cell numbers `row * size + col` (np.int64), so any tabular agent can key
its Q-table by them. A move that would leave the grid keeps the agent where it is (and
still costs -1). `max_steps` moves without reaching the end truncate the episode.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ENCODING_VERSION = 1
"""Bump when the meaning of observation numbers changes (Q-tables are keyed by them)."""

ACTION_NAMES = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
"""The 8 moves, clockwise from up (the order of `mario_rl.env.ram.DIRECTIONS`)."""
ARROWS = ("↑", "↗", "→", "↘", "↓", "↙", "←", "↖")
MOVES = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
"""(row change, column change) of each move; rows grow downwards."""
DOWN_RIGHT = ACTION_NAMES.index("SE")
"""The diagonal towards the end: the best move from every cell off the last row/column."""

MOVE_REWARD = -1.0
END_REWARD = 0.0


class GridWorldEnv(gym.Env[np.int64, np.int64]):
    """A `size` x `size` grid: start at cell 0 (top-left), end at the last cell.

    Each move costs `MOVE_REWARD` (-1) unless it reaches the end, which gives `END_REWARD`
    (0) and terminates the episode. After `max_steps` moves without reaching the end the
    episode is truncated (never terminated).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, size: int = 3, max_steps: int = 100) -> None:
        if not isinstance(size, int | np.integer) or size < 2:
            raise ValueError(f"size: expected an integer of at least 2, got {size!r}")
        if not isinstance(max_steps, int | np.integer) or max_steps < 1:
            raise ValueError(f"max_steps: expected a positive integer, got {max_steps!r}")
        self.size = int(size)
        self.max_steps = int(max_steps)
        self.start = 0
        self.end = self.size * self.size - 1
        self.observation_space = spaces.Discrete(self.size * self.size)
        self.action_space = spaces.Discrete(len(MOVES))
        self._cell = self.start
        self._steps = 0

    @property
    def best_return(self) -> float:
        """Return of the shortest path: `size - 1` diagonal moves, the last one free."""
        return MOVE_REWARD * (self.size - 2) + END_REWARD

    def cell(self, row: int, col: int) -> int:
        """The observation number of the cell at (`row`, `col`)."""
        return row * self.size + col

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        self._cell = self.start
        self._steps = 0
        return np.int64(self._cell), {}

    def step(self, action: Any) -> tuple[np.int64, SupportsFloat, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action: expected an integer in [0, {len(MOVES)}), got {action!r}")
        row, col = divmod(self._cell, self.size)
        d_row, d_col = MOVES[int(action)]
        if 0 <= row + d_row < self.size and 0 <= col + d_col < self.size:
            self._cell = self.cell(row + d_row, col + d_col)
        self._steps += 1
        terminated = self._cell == self.end
        truncated = not terminated and self._steps >= self.max_steps
        reward = END_REWARD if terminated else MOVE_REWARD
        return np.int64(self._cell), reward, terminated, truncated, {}
