"""PPO's maths as pure functions: GAE, the clipped policy loss, the value loss, entropy,
surprisal, the annealing schedules and explained variance."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Categorical

# --------------------------------------------------------------------------- the maths


def compute_gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    lam: float,
) -> Tensor:
    """Generalised advantage estimates for a (T, N) rollout (Schulman et al. 2016, eq. 16).

    `values[t]` is V(s_t) and `next_values[t]` is V(s_{t+1}) of the real next state: the
    value of the final observation where the episode was truncated, of the next
    observation otherwise. delta_t = r_t + gamma (1 - terminated_t) next_values_t - V(s_t):
    a truncated step bootstraps, a terminated one does not. A_t = delta_t + gamma lambda
    (1 - done_t) A_{t+1}: the recursion stops at every episode end. Returns are A + values.
    """
    not_terminated = 1.0 - terminated.float()
    not_done = 1.0 - (terminated | truncated).float()
    deltas = rewards + gamma * not_terminated * next_values - values
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = deltas[t] + gamma * lam * not_done[t] * running
        advantages[t] = running
    return advantages


def ppo_clip_loss_per_element(ratio: Tensor, advantages: Tensor, clip: float) -> Tensor:
    """-min(ratio A, clip(ratio, 1 - clip, 1 + clip) A), element by element (PPO eq. 7)."""
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages
    return -torch.min(unclipped, clipped)


def ppo_clip_loss(ratio: Tensor, advantages: Tensor, clip: float) -> Tensor:
    """The clipped surrogate loss, averaged over the batch."""
    return ppo_clip_loss_per_element(ratio, advantages, clip).mean()


def value_loss(
    values: Tensor, returns: Tensor, old_values: Tensor, clip: float | None = None
) -> Tensor:
    """0.5 (V - R)^2 over the batch; with `clip`, the worse of that and the clipped update's.

    The clipped form keeps V within +-clip of the rollout's values, as OpenAI baselines do.
    """
    unclipped = (values - returns) ** 2
    if clip is None:
        return 0.5 * unclipped.mean()
    clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
    clipped = (clipped_values - returns) ** 2
    return 0.5 * torch.max(unclipped, clipped).mean()


def entropy(logits: Tensor) -> Tensor:
    """Mean entropy of the categorical policies given by `logits` (the exploration bonus)."""
    return Categorical(logits=logits).entropy().mean()


def entropy_floor_loss(logits: Tensor, floor: float) -> tuple[Tensor, Tensor]:
    """The entropy floor's loss and the share of states under `floor` nats: each state whose
    policy entropy is under the floor adds its KL divergence from the uniform policy,
    KL(u || pi) = -mean_a log pi_a - log n, averaged over all states. Not the entropy's own
    shortfall: the entropy's gradient vanishes as a policy saturates (a logit gap of 14
    leaves it near 5e-5), so the surest states, which need the push most, would feel none;
    KL(u || pi)'s gradient in the logits is pi - u, of norm about 0.9 there (5 actions)."""
    log_probs = torch.log_softmax(logits, dim=-1)
    entropies = -(log_probs.exp() * log_probs).sum(dim=-1)
    under = (entropies < floor).float()
    from_uniform = -log_probs.mean(dim=-1) - math.log(logits.shape[-1])
    return (under * from_uniform).mean(), under.mean()


def surprisal(predicted_features: Tensor, next_features: Tensor) -> Tensor:
    """0.5 ||phi_hat(s') - phi(s')||^2 per transition (Pathak et al. 2017, eq. 5)."""
    return 0.5 * ((predicted_features - next_features) ** 2).sum(dim=-1)


def annealed_learning_rate(learning_rate: float, progress: float, anneal: bool) -> float:
    """The learning rate at `progress` (0..1 of the budget): linear decay to 0 if `anneal`."""
    if not anneal:
        return learning_rate
    return learning_rate * max(0.0, 1.0 - progress)


def annealed_entropy_coef(start: float, end: float | None, progress: float) -> float:
    """The entropy weight at `progress` (0..1 of the budget): linear from `start` to `end`."""
    if end is None:
        return start
    return start + (end - start) * min(1.0, max(0.0, progress))


def explained_variance(predicted: Tensor, target: Tensor) -> float:
    """1 - Var(target - predicted) / Var(target): 1 is perfect, 0 no better than a constant."""
    variance = target.var()
    if variance == 0:
        return math.nan
    return float(1.0 - (target - predicted).var() / variance)
