"""Shared test fixtures: a tiny scripted frame env for exact wrapper checks."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
# One torch thread: a second spins on the cores the env worker processes need.
torch.set_num_threads(1)


@pytest.fixture
def stop_signals_at_their_defaults():
    """Stop signals as a foreground shell leaves them: the suite run under `nohup` or as a
    background job inherits SIGHUP or SIGINT ignored, which the code rightly keeps."""
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    defaults[signal.SIGHUP] = signal.SIG_DFL
    before = {number: signal.signal(number, handler) for number, handler in defaults.items()}
    yield
    for number, handler in before.items():
        signal.signal(number, handler)


class ScriptedFrameEnv(gym.Env):
    """Frame t is filled with value t (mod 256); reward t; scripted x, lives and the end.

    `x_script[t]`, `life_script[t]` (and `area_script[t]`, if given) give info["x_pos"],
    info["life"] (and info["area"]) after step t;
    the episode terminates after `length` steps.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        length: int = 50,
        shape: tuple[int, ...] = (6, 8),
        x_script: list[int] | None = None,
        life_script: list[int] | None = None,
        area_script: list[int] | None = None,
    ) -> None:
        self.length = length
        self.shape = shape
        self.x_script = x_script
        self.life_script = life_script
        self.area_script = area_script
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Discrete(3)
        self.t = 0
        self.actions: list[int] = []

    def _info(self) -> dict[str, Any]:
        x = self.x_script[self.t] if self.x_script else self.t
        life = self.life_script[self.t] if self.life_script else 2
        info = {
            "x_pos": x,
            "life": life,
            "frames": self.t,
            "flag_get": False,
            "time": 400 - self.t,
            "score": 0,
        }
        if self.area_script:
            info["area"] = self.area_script[self.t]
        return info

    def _frame(self) -> np.ndarray:
        return np.full(self.shape, self.t % 256, np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        self.actions = []
        return self._frame(), self._info()

    def step(self, action: int):
        self.t += 1
        self.actions.append(int(action))
        return self._frame(), float(self.t), self.t >= self.length, False, self._info()


@pytest.fixture
def scripted_env() -> type[ScriptedFrameEnv]:
    return ScriptedFrameEnv


@pytest.fixture(scope="session")
def untrained_dqn_run(tmp_path_factory) -> Path:
    """A run directory with one checkpoint of an untrained DQN (right_only, 1-1), made by
    the real trainer on a 200-frame budget; tests read it and copy from it, never change it."""
    from mario_rl.agents.dqn import DQNConfig
    from mario_rl.env.pipeline import EnvConfig
    from mario_rl.runs import RunConfig
    from mario_rl.training import train

    root = tmp_path_factory.mktemp("runs")
    run = RunConfig(frames=200, device="cpu", runs_dir=str(root), progress=False)
    agent = DQNConfig(replay_size=1_000, burn_in=10**6, worker_processes=False, torch_threads=1)
    env = EnvConfig(level="1-1", actions="right_only", no_progress_steps=25)
    return train(run, env, agent)
