"""Rollout storage and its collection from a vector env."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from torch import Tensor
from torch.distributions import Categorical

from mario_rl.agents.ppo.networks import ActorCritic
from mario_rl.env.vector import FrameCounter, StepsInTurn, group_columns
from mario_rl.runs import finished_episodes

if TYPE_CHECKING:
    from mario_rl.agents.ppo.agent import PPOAgent


# --------------------------------------------------------------------------- rollouts


@torch.no_grad()
def act(
    policy: ActorCritic,
    obs: Tensor,
    greedy: bool = False,
    generator: torch.Generator | None = None,
    uniforms: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(actions, their log-probabilities, values) of `policy` for a batch of observations.

    Sampling draws from `generator` when given (a collector's own stream, so that acting
    in a second thread leaves the global generator to the learner). With `uniforms` (one
    U(0, 1) draw per observation) it inverts each policy's CDF at its draw instead: the same
    distribution, and the same actions however the batch is split.
    """
    logits, values = policy(obs)
    distribution = Categorical(logits=logits)
    if greedy:
        actions = logits.argmax(dim=-1)
    elif uniforms is not None:
        below = distribution.probs.cumsum(dim=-1) < uniforms.unsqueeze(-1)
        actions = below.sum(dim=-1).clamp(max=logits.shape[-1] - 1)
    else:
        actions = torch.multinomial(distribution.probs, 1, generator=generator).squeeze(-1)
    return actions, distribution.log_prob(actions), values


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype)).dtype


@dataclass
class Rollout:
    """num_steps x num_envs transitions, all on the device, shaped (T, N, ...).

    `next_obs[t]` is the real s_{t+1}: the final observation where the episode ended at t
    (Gymnasium's `final_obs`), not the first one of the next episode (unless
    `PPOConfig.terminal_next_obs` asks for that, at terminations, as an ablation).
    """

    obs: Tensor
    next_obs: Tensor
    actions: Tensor
    logprobs: Tensor
    values: Tensor
    next_values: Tensor
    rewards: Tensor
    terminated: Tensor
    truncated: Tensor

    @classmethod
    def allocate(
        cls, num_steps: int, num_envs: int, obs_space: spaces.Box, device: torch.device
    ) -> Rollout:
        obs_shape = (num_steps, num_envs, *obs_space.shape)
        obs_dtype = _torch_dtype(obs_space.dtype)

        def zeros(dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.zeros((num_steps, num_envs), dtype=dtype, device=device)

        return cls(
            obs=torch.zeros(obs_shape, dtype=obs_dtype, device=device),
            next_obs=torch.zeros(obs_shape, dtype=obs_dtype, device=device),
            actions=zeros(torch.int64),
            logprobs=zeros(),
            values=zeros(),
            next_values=zeros(),
            rewards=zeros(),
            terminated=zeros(torch.bool),
            truncated=zeros(torch.bool),
        )


class RolloutCollector:
    """Steps vector envs with the agent's policy, `num_steps` at a time.

    Keeps what spans rollouts: the current observations, the emulator-frame count
    (`frames.total`, the unit of every budget) and its own sampling generator (seeded by
    `seed`). The envs must use Gymnasium's SAME_STEP autoreset, as `make_vector_env` does.

    `envs` may be a list of groups (`make_vector_env_groups`), stepped in turn: the policy
    acts on one group while the others' workers emulate, so the cores are not left idle
    while this process stores a step and runs the network. The groups are the columns of
    one rollout, in order, and give the same rollout as one vector env of them all: each
    step draws one uniform per env up front, however the envs are grouped.

    By default it acts with `agent.policy` and reuses one `Rollout`, valid until the next
    `collect`. With `acting_policy` (a copy the caller refreshes between rollouts) it acts
    with that network and alternates two rollouts, so `collect` can run in a second thread
    while the agent updates on the previous rollout.
    """

    def __init__(
        self,
        envs: VectorEnv | Sequence[VectorEnv],
        agent: PPOAgent,
        num_steps: int,
        seed: int | None = None,
        acting_policy: ActorCritic | None = None,
    ) -> None:
        self.groups = [envs] if isinstance(envs, VectorEnv) else list(envs)
        self.columns = group_columns(self.groups)
        self.num_envs = self.columns[-1].stop
        first = self.groups[0]
        self.policy = acting_policy if acting_policy is not None else agent.policy
        self.device = agent.device
        self.terminal_pairs_next_start = agent.config.terminal_next_obs == "next-start"
        self.rollouts = [
            Rollout.allocate(num_steps, self.num_envs, first.single_observation_space, self.device)
            for _ in range(1 if acting_policy is None else 2)
        ]
        self.collected = 0
        self.generator = torch.Generator(device=self.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        self.frames = FrameCounter(self.num_envs)
        observations = []
        for group, columns in zip(self.groups, self.columns, strict=True):
            group_seed = None if seed is None else seed + columns.start
            obs, info = group.reset(seed=group_seed)
            self.frames.start(info, columns)
            observations.append(torch.as_tensor(obs, device=self.device))
        self.obs = torch.cat(observations)
        self.steps = StepsInTurn()

    def collect(self) -> tuple[Rollout, list[tuple[int, dict[str, Any]]]]:
        """Fill the rollout; return it and (frames so far, statistics) of each finished episode.

        The frame count is the run's total after the step the episode ended in, as
        `MetricsLogger` and a frames-to-first-clear measurement need it.
        """
        rollout = self.rollouts[self.collected % len(self.rollouts)]
        self.collected += 1
        episodes: list[tuple[int, dict[str, Any]]] = []
        num_steps = rollout.actions.shape[0]
        for t in range(num_steps + 1):
            if t < num_steps:
                uniforms = torch.rand(self.num_envs, generator=self.generator, device=self.device)
            ended: list[dict[str, Any]] = []
            for group, columns in zip(self.groups, self.columns, strict=True):
                if t > 0:
                    ended += self._finish_step(group, columns, rollout, t - 1)
                if t < num_steps:
                    obs = self.obs[columns]
                    actions, logprobs, values = act(self.policy, obs, uniforms=uniforms[columns])
                    self.steps.send(group, actions.cpu().numpy())
                    rollout.obs[t, columns] = obs
                    rollout.actions[t, columns] = actions
                    rollout.logprobs[t, columns] = logprobs
                    rollout.values[t, columns] = values
            episodes += [(self.frames.total, episode) for episode in ended]

        # V(s_t+1): the next step's value within an episode, V(final_obs) at truncations
        # (terminations never bootstrap, so their entry is unused).
        rollout.next_values[:-1] = rollout.values[1:]
        with torch.no_grad():
            rollout.next_values[-1] = self.policy(self.obs)[1]
            if rollout.truncated.any():
                truncated_obs = rollout.next_obs[rollout.truncated]
                rollout.next_values[rollout.truncated] = self.policy(truncated_obs)[1]
        return rollout, episodes

    def _finish_step(
        self, group: VectorEnv, columns: slice, rollout: Rollout, t: int
    ) -> list[dict[str, Any]]:
        """Wait for `group`'s step t; store what it returned; its finished episodes."""
        obs, rewards, terminated, truncated, info = self.steps.receive(group)
        self.frames.update(info, columns)
        next_obs = torch.as_tensor(obs, device=self.device)
        rollout.next_obs[t, columns] = next_obs
        for i in np.flatnonzero(info.get("_final_obs", ())):
            if terminated[i] and self.terminal_pairs_next_start:
                continue  # the ablation: keep the next episode's first observation
            final_obs = torch.as_tensor(info["final_obs"][i], device=self.device)
            rollout.next_obs[t, columns.start + i] = final_obs
        rollout.rewards[t, columns] = torch.as_tensor(rewards, device=self.device)
        rollout.terminated[t, columns] = torch.as_tensor(terminated, device=self.device)
        rollout.truncated[t, columns] = torch.as_tensor(truncated, device=self.device)
        self.obs[columns] = next_obs
        return finished_episodes(info)
