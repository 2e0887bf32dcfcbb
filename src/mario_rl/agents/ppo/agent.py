"""`PPOAgent`: acting and the PPO (+ ICM) update; the policy of a checkpoint."""

from __future__ import annotations

import functools
import math
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn
from torch.distributions import Categorical

from mario_rl.agents import Policy
from mario_rl.agents.ppo.config import PPOConfig
from mario_rl.agents.ppo.icm import (
    ICM,
    DiscountedReturnFilter,
    RunningMeanStd,
    normalize_by_return_std,
    normalize_per_env,
)
from mario_rl.agents.ppo.losses import (
    annealed_entropy_coef,
    annealed_learning_rate,
    compute_gae,
    entropy,
    entropy_floor_loss,
    explained_variance,
    ppo_clip_loss,
    value_loss,
)
from mario_rl.agents.ppo.networks import ActorCritic
from mario_rl.agents.ppo.rollout import Rollout, act
from mario_rl.env.pipeline import EnvConfig, make_env
from mario_rl.env.wrappers import ObservationStats
from mario_rl.nets import adam, load_optimizer_state, on_device

# --------------------------------------------------------------------------- the agent


class PPOAgent:
    """The stateful part of PPO: the networks, their optimiser and the surprisal statistics.

    `act` chooses actions (no gradients); `update` turns a rollout into rewards, advantages
    and `num_epochs` passes of minibatch gradient steps, and returns scalar metrics named
    as every agent names them (`losses/...`, `charts/...`).
    """

    def __init__(
        self,
        config: PPOConfig,
        observation_space: spaces.Box,
        num_actions: int,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.obs_shape = tuple(observation_space.shape)
        self.num_actions = num_actions
        if config.entropy_floor > 0 and config.entropy_floor >= math.log(num_actions):
            raise ValueError(
                f"entropy_floor: expected below log({num_actions}) = {math.log(num_actions):.3f} "
                f"nats, the entropy of a uniform policy over {num_actions} actions; got "
                f"{config.entropy_floor}"
            )
        self.policy = on_device(
            ActorCritic(self.obs_shape, num_actions, config.network), self.device
        )
        self.icm = (
            on_device(
                ICM(self.obs_shape, num_actions, config.network, config.icm_residual_blocks),
                self.device,
            )
            if config.uses_icm
            else None
        )
        parameters = list(self.policy.parameters())
        if self.icm is not None:
            parameters += list(self.icm.parameters())
        self.optimizer = adam(parameters, config.learning_rate, 1e-5)
        self.surprisal_stats = RunningMeanStd((config.num_envs,))
        self.intrinsic_returns = DiscountedReturnFilter(config.num_envs, config.gamma)
        self.intrinsic_return_stats = RunningMeanStd(())

    def act(
        self, obs: Tensor, greedy: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(actions, their log-probabilities, values) for a batch of observations."""
        return act(self.policy, obs, greedy, generator)

    @torch.no_grad()
    def value(self, obs: Tensor) -> Tensor:
        """V(s) for a batch of observations."""
        return self.policy(obs)[1]

    @torch.no_grad()
    def rewards(self, rollout: Rollout) -> tuple[Tensor, dict[str, float]]:
        """The rewards PPO learns from, (T, N), by the config's reward mode.

        Intrinsic reward: the ICM's surprisal divided by a running std, by the config's
        `intrinsic_normalization`: each env's own, or that of the discounted returns.
        """
        config = self.config
        extrinsic = rollout.rewards * config.reward_scale
        if self.icm is None:
            return extrinsic, {}
        steps, envs = rollout.actions.shape
        obs, next_obs = rollout.obs.flatten(0, 1), rollout.next_obs.flatten(0, 1)
        actions = rollout.actions.flatten()
        surprise = torch.cat(
            [
                self.icm.losses(obs[chunk], next_obs[chunk], actions[chunk]).surprisal
                for chunk in self.rollout_chunks(len(obs))
            ]
        ).view(steps, envs)
        if config.intrinsic_normalization == "return-std":
            intrinsic = normalize_by_return_std(
                surprise, self.intrinsic_returns, self.intrinsic_return_stats
            )
        else:
            intrinsic = normalize_per_env(surprise, self.surprisal_stats)
        metrics = {
            "charts/surprisal": float(surprise.mean()),
            "charts/intrinsic_reward": float(intrinsic.mean()),
        }
        if config.reward_mode == "intrinsic":
            return intrinsic, metrics
        return extrinsic + config.intrinsic_coef * intrinsic, metrics

    def rollout_chunks(self, samples: int) -> list[slice]:
        """A rollout's `samples` in minibatch-sized slices, for passes without gradients:
        the whole rollout at once needs activations above the size that
        `runs.retain_freed_memory` keeps for reuse (58 MB a layer for 1,024 samples
        through the small torso), so each pass would fault its memory in afresh."""
        size = max(1, samples // self.config.num_minibatches)
        return [slice(start, start + size) for start in range(0, samples, size)]

    @torch.no_grad()
    def relabel(self, rollout: Rollout) -> None:
        """Replace the rollout's log-probabilities with the current policy's.

        With `overlap`, a rollout is collected by a copy of the policy one update behind.
        Its own log-probabilities would start every ratio at pi_new / pi_old of the whole
        previous update, so many samples begin clipped (measured: median clip fraction 0.36,
        KL up to 0.16); relabelled, the clip bounds this update's change alone, at the cost
        of treating one-update-old actions as on-policy.
        """
        obs, actions = rollout.obs.flatten(0, 1), rollout.actions.flatten()
        logprobs = rollout.logprobs.view(-1)
        for chunk in self.rollout_chunks(len(obs)):
            logits, _ = self.policy(obs[chunk])
            logprobs[chunk] = Categorical(logits=logits).log_prob(actions[chunk])

    def update(self, rollout: Rollout, progress: float = 0.0) -> dict[str, float]:
        """One PPO update from `rollout`; `progress` (0..1 of the budget) anneals the LR."""
        config = self.config
        if config.overlap:
            self.relabel(rollout)
        learning_rate = annealed_learning_rate(config.learning_rate, progress, config.anneal_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        entropy_coef = annealed_entropy_coef(config.entropy_coef, config.entropy_coef_end, progress)

        rewards, metrics = self.rewards(rollout)
        advantages = compute_gae(
            rewards,
            rollout.values,
            rollout.next_values,
            rollout.terminated,
            rollout.truncated,
            config.gamma,
            config.gae_lambda,
        )
        returns = advantages + rollout.values

        obs, next_obs = rollout.obs.flatten(0, 1), rollout.next_obs.flatten(0, 1)
        actions, old_logprobs = rollout.actions.flatten(), rollout.logprobs.flatten()
        old_values, flat_returns = rollout.values.flatten(), returns.flatten()
        flat_advantages = advantages.flatten()
        sums: dict[str, float] = {}
        minibatches = 0
        for _ in range(config.num_epochs):
            order = torch.randperm(config.batch_size, device=self.device)
            for batch in order.split(config.minibatch_size):
                logits, values = self.policy(obs[batch])
                distribution = Categorical(logits=logits)
                log_ratio = distribution.log_prob(actions[batch]) - old_logprobs[batch]
                ratio = log_ratio.exp()
                batch_advantages = flat_advantages[batch]
                if config.normalize_advantages:
                    batch_advantages = (batch_advantages - batch_advantages.mean()) / (
                        batch_advantages.std() + 1e-8
                    )
                policy_loss = ppo_clip_loss(ratio, batch_advantages, config.clip_coef)
                critic_loss = value_loss(
                    values,
                    flat_returns[batch],
                    old_values[batch],
                    config.clip_coef if config.clip_value_loss else None,
                )
                bonus = entropy(logits)
                loss = policy_loss + config.value_coef * critic_loss - entropy_coef * bonus
                step = {
                    "losses/policy_loss": policy_loss.item(),
                    "losses/value_loss": critic_loss.item(),
                    "losses/entropy": bonus.item(),
                }
                if config.entropy_floor > 0:
                    floor_loss, under = entropy_floor_loss(logits, config.entropy_floor)
                    loss = loss + config.entropy_floor_coef * floor_loss
                    step["losses/entropy_floor"] = floor_loss.item()
                    step["losses/under_entropy_floor"] = under.item()
                if self.icm is not None:
                    icm = self.icm.losses(obs[batch], next_obs[batch], actions[batch])
                    beta = config.icm_forward_weight
                    loss = loss + (1.0 - beta) * icm.inverse + beta * icm.forward
                    step["losses/icm_inverse"] = icm.inverse.item()
                    step["losses/icm_forward"] = icm.forward.item()

                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.policy.parameters(), config.max_grad_norm)
                if self.icm is not None:
                    nn.utils.clip_grad_norm_(self.icm.parameters(), config.max_grad_norm)
                self.optimizer.step()

                with torch.no_grad():
                    # Schulman's unbiased, low-variance KL estimate (CleanRL's approx_kl).
                    step["losses/approx_kl"] = ((ratio - 1) - log_ratio).mean().item()
                    step["losses/clipfrac"] = (
                        ((ratio - 1.0).abs() > config.clip_coef).float().mean().item()
                    )
                for key, value in step.items():
                    sums[key] = sums.get(key, 0.0) + value
                minibatches += 1

        metrics.update({key: total / minibatches for key, total in sums.items()})
        metrics["losses/explained_variance"] = explained_variance(old_values, flat_returns)
        metrics["charts/learning_rate"] = learning_rate
        metrics["charts/entropy_coef"] = entropy_coef
        return metrics

    def checkpoint(
        self, env_config: EnvConfig, obs_stats: ObservationStats | None = None
    ) -> dict[str, Any]:
        """The agent's part of a checkpoint: what `mario_rl.runs.save_checkpoint` requires,
        what `policy_from_checkpoint` reads, and the rest of the state `load_checkpoint`
        restores. A training loop adds its counters, RNG states and run config.
        `obs_stats`: the normalisation the envs used, so evaluation uses the same.
        """
        return {
            "algo": self.config.algo,
            "module": __package__,  # mario_rl.agents.ppo, what load_policy imports
            "action_set": env_config.actions,
            "network": self.config.network,
            "env_config": env_config.to_dict(),
            "agent_config": asdict(self.config),
            "num_actions": self.num_actions,
            "obs_shape": self.obs_shape,
            "model_state": self.policy.state_dict(),
            "icm_state": None if self.icm is None else self.icm.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "surprisal_stats": self.surprisal_stats.state_dict(),
            "intrinsic_returns": self.intrinsic_returns.state_dict(),
            "intrinsic_return_stats": self.intrinsic_return_stats.state_dict(),
            "obs_stats": None if obs_stats is None else obs_stats.to_dict(),
        }

    def load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore what `checkpoint` saved, to resume training exactly."""
        self.policy.load_state_dict(checkpoint["model_state"])
        if self.icm is not None:
            self.icm.load_state_dict(checkpoint["icm_state"])
        load_optimizer_state(self.optimizer, checkpoint["optimizer_state"])
        self.surprisal_stats.load_state_dict(checkpoint["surprisal_stats"])
        # Absent from checkpoints written before `intrinsic_normalization` existed.
        if "intrinsic_returns" in checkpoint:
            self.intrinsic_returns.load_state_dict(checkpoint["intrinsic_returns"])
            self.intrinsic_return_stats.load_state_dict(checkpoint["intrinsic_return_stats"])


# --------------------------------------------------------------------------- evaluation


def policy_from_checkpoint(checkpoint: dict[str, Any], device: torch.device) -> Policy:
    """The greedy policy of a PPO checkpoint (the `mario_rl.agents` interface).

    Acting needs only the actor-critic: the ICM and the optimiser are not loaded. A
    normalised pipeline gets the normalisation stats training used.
    """
    config = PPOConfig(**checkpoint["agent_config"])
    num_actions = int(checkpoint["num_actions"])
    net = ActorCritic(tuple(checkpoint["obs_shape"]), num_actions, config.network)
    net.load_state_dict(checkpoint["model_state"])
    net.to(device).eval()

    @torch.no_grad()
    def greedy(obs: np.ndarray) -> np.ndarray:
        logits, _ = net(torch.as_tensor(obs, device=device))
        return logits.argmax(dim=1).cpu().numpy()

    @torch.no_grad()
    def probabilities(obs: np.ndarray) -> np.ndarray:
        logits, _ = net(torch.as_tensor(obs, device=device))
        return torch.softmax(logits.double(), dim=1).cpu().numpy()

    env_config = EnvConfig(**checkpoint["env_config"])
    stats = checkpoint.get("obs_stats")
    env = make_env
    if stats is not None:
        env = functools.partial(make_env, obs_stats=ObservationStats.from_dict(stats))
    return Policy(
        config.algo, env_config, num_actions, greedy, make_env=env, probabilities=probabilities
    )
