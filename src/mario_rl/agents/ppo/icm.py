"""Curiosity: the Intrinsic Curiosity Module and the running statistics that normalise its
surprisal (per env by its own std, or by the std of its discounted return)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mario_rl.agents.ppo.config import INVERSE_HIDDEN
from mario_rl.agents.ppo.losses import surprisal
from mario_rl.agents.ppo.networks import image_torso
from mario_rl.nets import as_float

# --------------------------------------------------------------------------- curiosity


class ForwardResidualBlock(nn.Module):
    """x + f(x, a): two dense layers, the one-hot action fed to each (Burda et al. 2018)."""

    def __init__(self, width: int, num_actions: int) -> None:
        super().__init__()
        self.first = nn.Linear(width + num_actions, width)
        self.second = nn.Linear(width + num_actions, width)

    def forward(self, x: Tensor, action_one_hot: Tensor) -> Tensor:
        hidden = F.leaky_relu(self.first(torch.cat([x, action_one_hot], dim=-1)))
        return x + self.second(torch.cat([hidden, action_one_hot], dim=-1))


@dataclass
class ICMLosses:
    """The ICM's two losses on a batch, and each transition's surprisal."""

    inverse: Tensor
    """Cross-entropy of the inverse model's action prediction (trains the encoder)."""
    forward: Tensor
    """Mean surprisal: the forward model's loss (does not train the encoder)."""
    surprisal: Tensor
    """Per-transition surprisal, shape (B,)."""


class ICM(nn.Module):
    """Intrinsic Curiosity Module (Pathak et al. 2017): encoder, inverse and forward models.

    The encoder phi maps observations to the torso's 512 features. The inverse model
    predicts the action a_t from phi(s_t) and phi(s_t+1) (eq. 2-3); its loss shapes phi to
    keep only what the agent can influence. The forward model predicts phi(s_t+1) from
    phi(s_t) and a_t (eq. 4); its error is the surprisal. It sees detached features, so it
    cannot shrink its error by collapsing phi. The ICM shares no weights with the policy.
    """

    def __init__(
        self, obs_shape: tuple[int, ...], num_actions: int, network: str, residual_blocks: int
    ) -> None:
        super().__init__()
        self.num_actions = num_actions
        self.encoder, features = image_torso(network, obs_shape)
        self.inverse_model = nn.Sequential(
            nn.Linear(2 * features, INVERSE_HIDDEN),
            nn.ReLU(),
            nn.Linear(INVERSE_HIDDEN, num_actions),
        )
        self.forward_in = nn.Linear(features + num_actions, features)
        self.forward_blocks = nn.ModuleList(
            ForwardResidualBlock(features, num_actions) for _ in range(residual_blocks)
        )
        self.forward_out = nn.Linear(features + num_actions, features)

    def features(self, obs: Tensor) -> Tensor:
        """phi(s) for a batch of observations."""
        return self.encoder(as_float(obs))

    def inverse_logits(self, features: Tensor, next_features: Tensor) -> Tensor:
        """Logits of the action that led from phi(s) to phi(s')."""
        return self.inverse_model(torch.cat([features, next_features], dim=-1))

    def predict_next_features(self, features: Tensor, actions: Tensor) -> Tensor:
        """phi_hat(s') from phi(s) and the action taken."""
        one_hot = F.one_hot(actions.long(), self.num_actions).float()
        x = F.leaky_relu(self.forward_in(torch.cat([features, one_hot], dim=-1)))
        for block in self.forward_blocks:
            x = block(x, one_hot)
        return self.forward_out(torch.cat([x, one_hot], dim=-1))

    def losses(self, obs: Tensor, next_obs: Tensor, actions: Tensor) -> ICMLosses:
        """Inverse loss, forward loss and surprisal for a batch of transitions (s, a, s')."""
        both = self.features(torch.cat([obs, next_obs]))
        features, next_features = both.chunk(2)
        inverse = F.cross_entropy(self.inverse_logits(features, next_features), actions.long())
        predicted = self.predict_next_features(features.detach(), actions)
        surprise = surprisal(predicted, next_features.detach())
        return ICMLosses(inverse=inverse, forward=surprise.mean(), surprisal=surprise)


class RunningMeanStd:
    """Running mean and variance of a stream of batches, one statistic per column.

    With shape (num_envs,), each env's surprisal gets its own scale. Batches are merged
    with Chan et al.'s parallel algorithm, as in OpenAI baselines.
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = epsilon

    def update(self, batch: np.ndarray) -> None:
        """Merge a batch shaped (B, *shape) into the statistics."""
        batch = np.asarray(batch, np.float64)
        batch_mean, batch_var, batch_count = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count
        self.var = (m2 + delta**2 * self.count * batch_count / total) / total
        self.count = total

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var + 1e-8)

    def state_dict(self) -> dict[str, Any]:
        # Lists, not arrays: checkpoints load with weights_only=True, which has no numpy.
        return {"mean": self.mean.tolist(), "var": self.var.tolist(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = np.asarray(state["mean"], np.float64).copy()
        self.var = np.asarray(state["var"], np.float64).copy()
        self.count = float(state["count"])


class DiscountedReturnFilter:
    """Each env's running discounted sum of its rewards, G <- gamma * G + r, step by step,
    carried across rollouts and through episode ends (Burda et al. 2018's reward filter):
    a stand-in for the returns the value function will be fitted to."""

    def __init__(self, num_envs: int, gamma: float) -> None:
        self.gamma = gamma
        self.returns = np.zeros(num_envs, np.float64)

    def update(self, rewards: np.ndarray) -> np.ndarray:
        """Feed (T, N) rewards, time-major; the (T, N) filtered returns after each step."""
        filtered = np.empty(rewards.shape, np.float64)
        for t, step in enumerate(np.asarray(rewards, np.float64)):
            self.returns = self.gamma * self.returns + step
            filtered[t] = self.returns
        return filtered

    def state_dict(self) -> dict[str, Any]:
        return {"returns": self.returns.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.returns = np.asarray(state["returns"], np.float64).copy()


def normalize_by_return_std(
    values: Tensor, returns: DiscountedReturnFilter, stats: RunningMeanStd
) -> Tensor:
    """Divide (T, N) `values` by the running std of their discounted returns, one scalar
    over all envs (`stats` of shape ()), after merging this rollout's returns into it.

    Burda et al. 2018's normalisation of surprisal: the returns the value function is fitted
    to then spread by about 1 whatever the surprisal's size, where dividing each reward by
    the reward's own std (`normalize_per_env`) leaves returns near 1 / (1 - gamma) times
    the reward's mean over its std (about 90 on `curiosity-ppo` at gamma 0.99).
    """
    stats.update(returns.update(values.cpu().numpy()).reshape(-1))
    return values / torch.as_tensor(stats.std, dtype=values.dtype, device=values.device)


def normalize_per_env(values: Tensor, stats: RunningMeanStd) -> Tensor:
    """Merge (T, N) `values` into `stats` (shape (N,)), then divide each column by its std.

    Only the scale changes: the mean stays in, so a surprisal remains a positive reward.
    """
    stats.update(values.cpu().numpy())
    return values / torch.as_tensor(stats.std, dtype=values.dtype, device=values.device)
