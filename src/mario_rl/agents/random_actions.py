"""The random agent as a training run: the floor a learning curve must rise above.

`mario-rl train --preset P --algo random` plays uniformly random actions through preset
P's pipeline (its frame skip, action set, sticky actions, episode rules) and logs them as
any training run does: `episodes.csv`, TensorBoard, `log.txt`, checkpoints, resume. So
`mario-rl compare` draws it on the same frame axis as the agents trained on that pipeline,
and `mario-rl eval RUN` measures it like any checkpoint. Nothing is learned: a checkpoint
holds the counters and the action generator's state only. Training-only additions of the
learning agents (snapshot and death starts) are left out, so every episode starts where
evaluation does, and so is the pipeline's observation normalisation (`normalize_moves`),
which only a network would see.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from mario_rl.env.pipeline import EnvConfig
from mario_rl.env.vector import FrameCounter, make_local_vector_env, make_vector_env
from mario_rl.policy import Policy
from mario_rl.runs import Budget, MetricsLogger, RunConfig, RunDir, Step, finished_episodes

ALGO = "random"
NETWORK = "none"
ACTIONS_STREAM = 2
"""Second word of the action generator's seed: `default_rng(seed)` alone is the stream env
0 draws its no-ops and sticky actions from after `reset(seed=seed)`, and the two must not
move together (as `mario_rl.evaluate.acting_rng`, whose stream is 1)."""


@dataclass(frozen=True)
class RandomConfig:
    """The random agent's settings."""

    num_envs: int = 1
    """Envs played side by side: one in this process, or that many worker processes."""

    def __post_init__(self) -> None:
        if not isinstance(self.num_envs, int) or self.num_envs < 1:
            raise ValueError(f"num_envs: expected a positive integer, got {self.num_envs!r}")

    @property
    def algo(self) -> str:
        return ALGO


class RandomTrainer:
    """Uniformly random actions in `num_envs` envs, as a `mario_rl.runs.Trainer`."""

    def __init__(
        self,
        run: RunConfig,
        env_config: EnvConfig,
        config: RandomConfig,
        device: torch.device,
        checkpoint: dict[str, Any] | None = None,
    ) -> None:
        # Normalisation changes only what a network would see, and measuring it costs
        # thousands of moves (curiosity-ppo's pipeline): left out.
        self.env_config = replace(env_config, normalize_moves=0)
        self.config, self.algo = config, ALGO
        self.frames = 0 if checkpoint is None else int(checkpoint["counters"]["frames"])
        self.steps = 0 if checkpoint is None else int(checkpoint["counters"]["steps"])
        self.rng = np.random.default_rng([run.seed, ACTIONS_STREAM])
        if checkpoint is not None:
            self.rng.bit_generator.state = checkpoint["action_rng"]
        # As PPO does: a resumed run starts its envs afresh, seeded past the frames done.
        seed = run.seed + self.frames
        build = make_vector_env if config.num_envs > 1 else make_local_vector_env
        self.envs = build(config.num_envs, self.env_config, seed=seed)
        self.num_actions = int(self.envs.single_action_space.n)
        self.frame_counter = FrameCounter(config.num_envs)
        self.frame_counter.total = self.frames
        _, info = self.envs.reset(seed=seed)
        self.frame_counter.start(info)
        self.frames = self.frame_counter.total

    @staticmethod
    def identity(env_config: EnvConfig, config: RandomConfig) -> tuple[str, str, str]:
        return ALGO, env_config.actions, NETWORK

    def start(self, run_dir: RunDir, logger: MetricsLogger) -> None:
        pass

    def done(self, budget: Budget) -> bool:
        return budget.spent(self.frames)

    def step(self, budget: Budget) -> Step:
        # One vector step: a stop between steps then checkpoints exactly the frames and
        # episodes logged so far.
        actions = self.rng.integers(0, self.num_actions, self.config.num_envs)
        _, _, _, _, info = self.envs.step(actions)
        self.frame_counter.update(info)
        self.frames = self.frame_counter.total
        self.steps += self.config.num_envs
        episodes = [(self.frames, episode) for episode in finished_episodes(info)]
        return Step(episodes, last=self.done(budget))

    def checkpoint(self, run_dir: RunDir) -> dict[str, Any]:
        return {
            "algo": ALGO,
            "module": __name__,
            "action_set": self.env_config.actions,
            "network": NETWORK,
            "env_config": self.env_config.to_dict(),
            "agent_config": asdict(self.config),
            "num_actions": self.num_actions,
            "model_state": {},
            "counters": {"frames": self.frames, "steps": self.steps},
            "action_rng": self.rng.bit_generator.state,
        }

    def after_checkpoint(self, run_dir: RunDir) -> None:
        pass

    def close(self) -> None:
        self.envs.close()


def policy_from_checkpoint(checkpoint: dict[str, Any], device: torch.device) -> Policy:
    """Uniformly random actions on the checkpoint's pipeline (the `mario_rl.agents`
    interface): drawn from the policy's `rng`, which evaluation seeds per episode, whether
    it asks for the greedy action or a sample."""
    num_actions = int(checkpoint["num_actions"])
    uniform = np.full(num_actions, 1.0 / num_actions)
    policy = Policy(
        ALGO,
        EnvConfig(**checkpoint["env_config"]),
        num_actions,
        greedy=lambda obs: policy.rng.integers(0, num_actions, len(obs)),
        probabilities=lambda obs: np.tile(uniform, (len(obs), 1)),
    )
    return policy
