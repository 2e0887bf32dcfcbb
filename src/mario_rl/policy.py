"""`Policy`: a trained agent as evaluation, recording, watch and race see it.

A leaf module (it imports only the env layer), so every agent and the Stable-Baselines3
adapter can build one without importing `mario_rl.agents`; `mario_rl.agents` re-exports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from mario_rl.env.pipeline import EnvConfig, make_env


@dataclass
class Policy:
    """A trained agent as evaluation sees it: observations in, actions out.

    `greedy` maps a batch of observations (as `make_env(env_config)` gives them, stacked on
    a first batch axis) to the agent's preferred action for each. Agents with a stochastic
    policy (PPO) also give `probabilities` (batch x actions); with `sample` set, `act`
    draws from them with `rng` instead of taking the greedy action. `make_env` builds the
    env the policy expects from an `EnvConfig`; agents whose observations are not the
    standard pipeline's (e.g. a symbolic RAM state) pass their own.
    """

    algo: str
    env_config: EnvConfig
    num_actions: int
    greedy: Callable[[np.ndarray], np.ndarray]
    make_env: Callable[..., gym.Env] = make_env
    checkpoint_path: str = ""
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    probabilities: Callable[[np.ndarray], np.ndarray] | None = None
    sample: bool = False

    def set_sampling(self, sample: bool) -> None:
        """Act by sampling the policy's distribution (True) or greedily (False)."""
        if sample and self.probabilities is None:
            raise ValueError(
                f"{self.algo} acts greedily only: sampling needs a stochastic policy (ppo)"
            )
        self.sample = sample

    def act(self, obs: np.ndarray, epsilon: float = 0.0) -> np.ndarray:
        """Greedy (or, with `sample`, drawn) actions for a batch; epsilon makes some random."""
        if self.sample and self.probabilities is not None:
            cumulative = np.cumsum(self.probabilities(obs), axis=1)
            draws = self.rng.random((len(cumulative), 1)) * cumulative[:, -1:]
            actions = (cumulative > draws).argmax(axis=1).astype(np.int64)
        else:
            actions = np.asarray(self.greedy(obs), np.int64)
        if epsilon > 0:
            explore = self.rng.random(len(actions)) < epsilon
            actions[explore] = self.rng.integers(0, self.num_actions, int(explore.sum()))
        return actions
