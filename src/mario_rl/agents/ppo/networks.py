"""The conv torso and the actor-critic."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mario_rl.agents.ppo.config import NETWORKS
from mario_rl.nets import as_float, build_torso

# --------------------------------------------------------------------------- networks


def image_torso(network: str, obs_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    """`nets.build_torso` for one of PPO's image torsos (NETWORKS) on (C, H, W)
    observations: (torso, feature size)."""
    if network not in NETWORKS:
        raise ValueError(f"network: expected one of {', '.join(NETWORKS)}, got {network!r}")
    if len(obs_shape) != 3:
        raise ValueError(
            f"network {network!r}: expected observations shaped (C, H, W), got {obs_shape}"
        )
    return build_torso(network, obs_shape)


def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2)) -> None:
    """Orthogonal weights and zero biases for every conv and linear layer (CleanRL's init)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)


class ActorCritic(nn.Module):
    """A torso shared by a policy head (action logits) and a value head V(s)."""

    def __init__(self, obs_shape: tuple[int, ...], num_actions: int, network: str) -> None:
        super().__init__()
        self.torso, features = image_torso(network, obs_shape)
        self.policy_head = nn.Linear(features, num_actions)
        self.value_head = nn.Linear(features, 1)
        orthogonal_init(self.torso)
        # Near-uniform first policy and unit-scale values, as in CleanRL's ppo_atari.py.
        orthogonal_init(self.policy_head, gain=0.01)
        orthogonal_init(self.value_head, gain=1.0)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """(logits, values) for a batch of observations."""
        features = self.torso(as_float(obs))
        return self.policy_head(features), self.value_head(features).squeeze(-1)


def with_more_actions(state: dict[str, Tensor], count: int) -> dict[str, Tensor]:
    """An `ActorCritic`'s state dict with `count` more actions after its own, each new
    row of the policy head the mean of the old rows. A new action's logit is then the mean
    of the old ones' (never above their best, so greedy play picks what it picked), and its
    probability the geometric mean of theirs: near 0 where the policy is sure, a fair share
    where it hesitates, which is where trying something else can pay."""
    grown = dict(state)
    weight, bias = state["policy_head.weight"], state["policy_head.bias"]
    grown["policy_head.weight"] = torch.cat([weight, weight.mean(0).expand(count, -1)])
    grown["policy_head.bias"] = torch.cat([bias, bias.mean().expand(count)])
    return grown
