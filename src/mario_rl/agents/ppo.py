"""PPO with GAE, and curiosity (an Intrinsic Curiosity Module) as an optional reward.

Read top to bottom: the config and the two named settings; the maths as pure functions
(GAE, the clipped policy loss, the value loss, entropy, surprisal); the networks (a conv
torso, the actor-critic, the ICM); the running std that normalises surprisal per env; the
rollout storage and its collection from a vector env; the agent that acts and updates;
`train`, the loop `mario-rl train` runs. At its core it is only this, plus the budget,
logging and checkpoints of `mario_rl.runs` (and, with `overlap`, the next `collect` running
in a second thread while `update` learns from the last rollout):

    agent = PPOAgent(config, envs.single_observation_space, envs.single_action_space.n)
    collector = RolloutCollector(envs, agent, config.num_steps, seed)
    while not budget.spent(collector.frames.total):
        rollout, episodes = collector.collect()
        metrics = agent.update(rollout, progress=budget.fraction(collector.frames.total))

References: PPO, Schulman et al. 2017, "Proximal Policy Optimization Algorithms" (eq. 7:
the clipped surrogate; eq. 9: the combined loss); GAE, Schulman et al. 2016,
"High-Dimensional Continuous Control Using Generalized Advantage Estimation" (eq. 16);
ICM, Pathak et al. 2017, "Curiosity-driven Exploration by Self-supervised Prediction"
(eq. 2-7); the forward model's residual blocks and the surprisal normalisation follow
Burda et al. 2018, "Large-Scale Study of Curiosity-Driven Learning".
"""

from __future__ import annotations

import copy
import functools
import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from torch import Tensor, nn
from torch.distributions import Categorical

from mario_rl.agents import Policy
from mario_rl.env.pipeline import EnvConfig, make_env, measure_obs_stats
from mario_rl.env.snapshots import check_snapshot_settings, snapshot_wrapper
from mario_rl.env.vector import FrameCounter, make_vector_env
from mario_rl.env.wrappers import ObservationStats
from mario_rl.nets import as_float, build_torso
from mario_rl.runs import (
    Budget,
    MetricsLogger,
    RunConfig,
    RunDir,
    Step,
    finished_episodes,
)

RewardMode = Literal["extrinsic", "intrinsic", "mixed"]
REWARD_MODES: tuple[str, ...] = ("extrinsic", "intrinsic", "mixed")
NETWORKS: tuple[str, ...] = ("nature", "small")
"""Torso names: the Nature CNN (84x84) and the ICM paper's small torso (42x42)."""
INVERSE_HIDDEN = 256
"""Hidden width of the ICM's inverse model (Pathak et al. 2017, section 3)."""


# --------------------------------------------------------------------------- config


@dataclass
class PPOConfig:
    """PPO's settings (the env, seed and budget live in `EnvConfig` and `RunConfig`).

    Defaults are CleanRL's `ppo_atari.py`. Step counts are agent steps.
    """

    num_envs: int = 8
    """Parallel environments (worker processes)."""
    num_steps: int = 128
    """Agent steps per env per rollout; a rollout is num_envs x num_steps transitions."""
    learning_rate: float = 2.5e-4
    """Adam's step size at the start of training."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run's frame budget."""
    gamma: float = 0.99
    """Discount factor per agent step."""
    gae_lambda: float = 0.95
    """GAE's lambda: 0 is one-step TD, 1 is Monte Carlo."""
    num_epochs: int = 4
    """Passes over each rollout per update."""
    num_minibatches: int = 4
    """Minibatches per epoch; must divide num_envs x num_steps."""
    normalize_advantages: bool = True
    """Standardise advantages within each minibatch."""
    clip_coef: float = 0.1
    """PPO's epsilon: the policy ratio is clipped to [1 - clip, 1 + clip]."""
    clip_value_loss: bool = True
    """Clip value updates to +-clip_coef around the rollout's values, as OpenAI baselines do."""
    value_coef: float = 0.5
    """Weight of the value loss in the combined loss."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus in the combined loss (at the start, if annealed)."""
    entropy_coef_end: float | None = None
    """If set, the entropy weight falls linearly from `entropy_coef` to this over the
    budget, so late training acts nearly as greedy evaluation does; None: constant."""
    max_grad_norm: float = 0.5
    """Clip the gradient norm of the policy and of the ICM (each separately) to this."""
    network: str = "nature"
    """Torso of the policy and of the ICM's encoder: `nature` (84x84) or `small` (42x42)."""
    reward_mode: RewardMode = "extrinsic"
    """`extrinsic`: game reward; `intrinsic`: surprisal only; `mixed`: game + c x surprisal."""
    extrinsic_scale: float = 1.0
    """The game reward is multiplied by this before learning (logged returns are unscaled)."""
    intrinsic_coef: float = 0.01
    """c in `mixed` mode: weight of the normalised surprisal next to the scaled game reward."""
    icm_forward_weight: float = 0.2
    """beta of Pathak et al. eq. 7: ICM loss = (1 - beta) inverse + beta forward."""
    icm_residual_blocks: int = 4
    """Residual blocks in the ICM's forward model (Burda et al. use 4)."""
    snapshot_starts: float = 0.0
    """Chance that a training episode starts from a snapshot of the env's own best runs
    (`mario_rl.env.snapshots.ResetFromOwnSnapshots`; 0: always the level's start)."""
    snapshot_pool: int = 32
    """Snapshots each env keeps for such starts."""
    snapshot_every: int = 8
    """Agent steps between snapshots along an episode."""
    overlap: bool = False
    """Collect the next rollout while updating on the last one; acting then lags the
    learner by one update, which the clipped ratio absorbs."""

    def __post_init__(self) -> None:
        for name in ("num_envs", "num_steps", "num_epochs", "num_minibatches"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_minibatches: expected a divisor of num_envs x num_steps = "
                f"{self.batch_size}, got {self.num_minibatches}"
            )
        if self.reward_mode not in REWARD_MODES:
            raise ValueError(
                f"reward_mode: expected one of {', '.join(REWARD_MODES)}, got {self.reward_mode!r}"
            )
        if self.network not in NETWORKS:
            raise ValueError(
                f"network: expected one of {', '.join(NETWORKS)}, got {self.network!r}"
            )
        if not 0.0 <= self.icm_forward_weight <= 1.0:
            raise ValueError(f"icm_forward_weight: expected 0..1, got {self.icm_forward_weight}")
        check_snapshot_settings(self.snapshot_starts, self.snapshot_pool, self.snapshot_every)
        for name in ("entropy_coef", "entropy_coef_end"):
            value = getattr(self, name)
            if value is not None and not value >= 0.0:
                raise ValueError(f"{name}: expected a weight >= 0, got {value!r}")

    @property
    def algo(self) -> str:
        """`ppo`, or `ppo-icm` when the ICM's surprisal is (part of) the reward."""
        return "ppo-icm" if self.uses_icm else "ppo"

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def uses_icm(self) -> bool:
        return self.reward_mode != "extrinsic"


SETTINGS: dict[str, tuple[str, EnvConfig, PPOConfig]] = {
    "curiosity-ppo": (
        "curiosity write-up: ICM surprisal as the only reward; 14 actions, 12-frame action "
        "spans keeping frames 4, 8, 12, 110x84 resize cropped to 84x84, per-pixel mean and "
        "scalar std from 10,000 random moves, 8 envs, 128-step rollouts, 3 epochs, clip 0.1. "
        "Not in the write-up, from Burda et al. 2018: Adam 1e-4, gamma 0.99, lambda 0.95, "
        "entropy 0.001, no value clipping",
        EnvConfig(
            actions="curiosity",
            frame_skip=12,
            keep_frames=(4, 8, 12),
            resize=(110, 84),
            crop_top=18,
            crop_bottom=8,
            frame_stack=1,
            normalize_moves=10_000,
        ),
        PPOConfig(
            num_envs=8,
            num_steps=128,
            learning_rate=1e-4,
            anneal_lr=False,
            gamma=0.99,
            gae_lambda=0.95,
            num_epochs=3,
            num_minibatches=4,
            clip_coef=0.1,
            # Intrinsic returns reach ~100 at gamma 0.99: a +-0.1 value clip would stall V.
            clip_value_loss=False,
            entropy_coef=0.001,
            network="nature",
            reward_mode="intrinsic",
        ),
    ),
    "ppo-fast": (
        "ours, a first guess for clearing 1-1 in 2M frames on 2 CPU cores: RIGHT_ONLY, 42x42 "
        "with the ICM paper's small torso, random no-op starts and sticky actions 0.25 (as "
        "evaluation has them), end on life loss, truncation "
        "after 100 steps without progress, game reward x0.1, gamma 0.9, Adam 5e-4 annealed, "
        "clip 0.2, no value clipping, 8 envs x 128 steps, 4 epochs of 4 minibatches; a "
        "quarter of training episodes start from snapshots of each env's own best runs; "
        "the next rollout is collected while the last one is learned",
        EnvConfig(
            # 1-1 needs no left, and 5 actions explore faster than 7 or 12.
            actions="right_only",
            frame_skip=4,
            # A quarter of the pixels; with the small torso about a quarter of the Nature
            # CNN's multiply-adds, so learning stays well below the emulator's cost.
            resize=(42, 42),
            frame_stack=4,
            # Random starts and sticky actions, as evaluation has them: the no-op starts
            # vary 1-1 little; sticky actions make a memorised button sequence fail.
            noop_max=30,
            sticky_probability=0.25,
            end_on_life_loss=True,
            # Stuck runs cost frames and teach nothing; truncated, so still bootstrapped.
            no_progress_steps=100,
        ),
        PPOConfig(
            num_envs=8,
            num_steps=128,
            learning_rate=5e-4,
            anneal_lr=True,
            # A short horizon suits the dense progress reward (uvipen's Mario PPO uses 0.9).
            gamma=0.9,
            gae_lambda=0.95,
            num_epochs=4,
            num_minibatches=4,
            clip_coef=0.2,
            # Andrychowicz et al. 2021 ("What Matters in On-Policy RL") find it hurts.
            clip_value_loss=False,
            entropy_coef=0.01,
            network="small",
            reward_mode="extrinsic",
            # Progress per step becomes about 0..1 and death -1.5: unit-scale value targets.
            extrinsic_scale=0.1,
            # Practise the level's hard parts without replaying the easy start every time;
            # three episodes in four still start at the level's real start.
            snapshot_starts=0.25,
            # 8 worker processes on 2 cores: the update would otherwise leave them idle.
            overlap=True,
        ),
    ),
}
"""Named settings as (source, env, agent): the fields of a `mario_rl.presets.Preset`.

The level is not fixed here (`EnvConfig.level` defaults to 1-1); runs set it.
"""


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


def normalize_per_env(values: Tensor, stats: RunningMeanStd) -> Tensor:
    """Merge (T, N) `values` into `stats` (shape (N,)), then divide each column by its std.

    Only the scale changes: the mean stays in, so a surprisal remains a positive reward.
    """
    stats.update(values.cpu().numpy())
    return values / torch.as_tensor(stats.std, dtype=values.dtype, device=values.device)


# --------------------------------------------------------------------------- rollouts


@torch.no_grad()
def act(
    policy: ActorCritic, obs: Tensor, greedy: bool = False, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """(actions, their log-probabilities, values) of `policy` for a batch of observations.

    Sampling draws from `generator` when given (a collector's own stream, so that acting
    in a second thread leaves the global generator to the learner).
    """
    logits, values = policy(obs)
    distribution = Categorical(logits=logits)
    if greedy:
        actions = logits.argmax(dim=-1)
    else:
        actions = torch.multinomial(distribution.probs, 1, generator=generator).squeeze(-1)
    return actions, distribution.log_prob(actions), values


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype)).dtype


@dataclass
class Rollout:
    """num_steps x num_envs transitions, all on the device, shaped (T, N, ...).

    `next_obs[t]` is the real s_{t+1}: the final observation where the episode ended at t
    (Gymnasium's `final_obs`), not the first one of the next episode.
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
        self.policy = ActorCritic(self.obs_shape, num_actions, config.network).to(self.device)
        self.icm = (
            ICM(self.obs_shape, num_actions, config.network, config.icm_residual_blocks).to(
                self.device
            )
            if config.uses_icm
            else None
        )
        parameters = list(self.policy.parameters())
        if self.icm is not None:
            parameters += list(self.icm.parameters())
        self.optimizer = torch.optim.Adam(parameters, lr=config.learning_rate, eps=1e-5)
        self.surprisal_stats = RunningMeanStd((config.num_envs,))

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

        Intrinsic reward: the ICM's surprisal divided by its running std, per env.
        """
        config = self.config
        extrinsic = rollout.rewards * config.extrinsic_scale
        if self.icm is None:
            return extrinsic, {}
        steps, envs = rollout.actions.shape
        surprise = self.icm.losses(
            rollout.obs.flatten(0, 1), rollout.next_obs.flatten(0, 1), rollout.actions.flatten()
        ).surprisal.view(steps, envs)
        intrinsic = normalize_per_env(surprise, self.surprisal_stats)
        metrics = {
            "charts/surprisal": float(surprise.mean()),
            "charts/intrinsic_reward": float(intrinsic.mean()),
        }
        if config.reward_mode == "intrinsic":
            return intrinsic, metrics
        return extrinsic + config.intrinsic_coef * intrinsic, metrics

    @torch.no_grad()
    def relabel(self, rollout: Rollout) -> None:
        """Replace the rollout's log-probabilities with the current policy's.

        With `overlap`, a rollout is collected by a copy of the policy one update behind.
        Its own log-probabilities would start every ratio at pi_new / pi_old of the whole
        previous update, so many samples begin clipped (measured: median clip fraction 0.36,
        KL up to 0.16); relabelled, the clip bounds this update's change alone, at the cost
        of treating one-update-old actions as on-policy.
        """
        logits, _ = self.policy(rollout.obs.flatten(0, 1))
        logprobs = Categorical(logits=logits).log_prob(rollout.actions.flatten())
        rollout.logprobs.copy_(logprobs.view_as(rollout.logprobs))

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
            "module": __name__,
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
            "obs_stats": None if obs_stats is None else obs_stats.to_dict(),
        }

    def load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore what `checkpoint` saved, to resume training exactly."""
        self.policy.load_state_dict(checkpoint["model_state"])
        if self.icm is not None:
            self.icm.load_state_dict(checkpoint["icm_state"])
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        self.surprisal_stats.load_state_dict(checkpoint["surprisal_stats"])


class RolloutCollector:
    """Steps a vector env with the agent's policy, `num_steps` at a time.

    Keeps what spans rollouts: the current observations, the emulator-frame count
    (`frames.total`, the unit of every budget) and its own sampling generator (seeded by
    `seed`). The envs must use Gymnasium's SAME_STEP autoreset, as `make_vector_env` does.

    By default it acts with `agent.policy` and reuses one `Rollout`, valid until the next
    `collect`. With `acting_policy` (a copy the caller refreshes between rollouts) it acts
    with that network and alternates two rollouts, so `collect` can run in a second thread
    while the agent updates on the previous rollout.
    """

    def __init__(
        self,
        envs: VectorEnv,
        agent: PPOAgent,
        num_steps: int,
        seed: int | None = None,
        acting_policy: ActorCritic | None = None,
    ) -> None:
        self.envs = envs
        self.policy = acting_policy if acting_policy is not None else agent.policy
        self.device = agent.device
        self.rollouts = [
            Rollout.allocate(num_steps, envs.num_envs, envs.single_observation_space, self.device)
            for _ in range(1 if acting_policy is None else 2)
        ]
        self.collected = 0
        self.generator = torch.Generator(device=self.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        obs, info = envs.reset(seed=seed)
        self.frames = FrameCounter(envs.num_envs)
        self.frames.start(info)
        self.obs = torch.as_tensor(obs, device=self.device)

    def collect(self) -> tuple[Rollout, list[tuple[int, dict[str, Any]]]]:
        """Fill the rollout; return it and (frames so far, statistics) of each finished episode.

        The frame count is the run's total when the episode ended, as `MetricsLogger`
        and a frames-to-first-clear measurement need it.
        """
        rollout = self.rollouts[self.collected % len(self.rollouts)]
        self.collected += 1
        episodes: list[tuple[int, dict[str, Any]]] = []
        for t in range(rollout.actions.shape[0]):
            actions, logprobs, values = act(self.policy, self.obs, generator=self.generator)
            obs, rewards, terminated, truncated, info = self.envs.step(actions.cpu().numpy())
            self.frames.update(info)
            next_obs = torch.as_tensor(obs, device=self.device)
            rollout.obs[t] = self.obs
            rollout.next_obs[t] = next_obs
            for i in np.flatnonzero(info.get("_final_obs", ())):
                rollout.next_obs[t, i] = torch.as_tensor(info["final_obs"][i], device=self.device)
            rollout.actions[t] = actions
            rollout.logprobs[t] = logprobs
            rollout.values[t] = values
            rollout.rewards[t] = torch.as_tensor(rewards, device=self.device)
            rollout.terminated[t] = torch.as_tensor(terminated, device=self.device)
            rollout.truncated[t] = torch.as_tensor(truncated, device=self.device)
            episodes += [(self.frames.total, episode) for episode in finished_episodes(info)]
            self.obs = next_obs

        # V(s_t+1): the next step's value within an episode, V(final_obs) at truncations
        # (terminations never bootstrap, so their entry is unused).
        rollout.next_values[:-1] = rollout.values[1:]
        with torch.no_grad():
            rollout.next_values[-1] = self.policy(self.obs)[1]
            if rollout.truncated.any():
                truncated_obs = rollout.next_obs[rollout.truncated]
                rollout.next_values[rollout.truncated] = self.policy(truncated_obs)[1]
        return rollout, episodes


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


# --------------------------------------------------------------------------- training


TORCH_THREADS = 1
"""Torch threads while training: with two, torch spins on the cores the env workers need
and collection runs 4-5x slower (measured on 2 cores)."""


def make_training_envs(
    env_config: EnvConfig, config: PPOConfig, seed: int, obs_stats: ObservationStats | None
) -> VectorEnv:
    """`num_envs` worker processes; with `snapshot_starts`, each keeps its own snapshot pool."""
    wrapper = snapshot_wrapper(config.snapshot_starts, config.snapshot_pool, config.snapshot_every)
    return make_vector_env(
        config.num_envs, env_config, seed=seed, obs_stats=obs_stats, wrapper=wrapper
    )


class PPOTrainer:
    """The PPO loop as a `mario_rl.runs.Trainer`: each `step` takes the next rollout, starts
    collecting the one after it in the background (`overlap`), and updates on it, annealing
    the learning rate and entropy weight by the budget's used fraction.

    `frames`, and what `checkpoint` saves, are those of the last rollout learned from: a
    rollout being collected in the background is not part of a checkpoint. A resumed run
    continues the networks, optimiser, statistics, counters and sampling RNG.
    """

    def __init__(
        self,
        run: RunConfig,
        env_config: EnvConfig,
        config: PPOConfig,
        device: torch.device,
        checkpoint: dict[str, Any] | None = None,
    ) -> None:
        self.env_config, self.config, self.algo = env_config, config, config.algo
        self.threads_before = torch.get_num_threads()
        torch.set_num_threads(TORCH_THREADS)
        self.obs_stats = None
        if checkpoint is not None and checkpoint.get("obs_stats") is not None:
            self.obs_stats = ObservationStats.from_dict(checkpoint["obs_stats"])
        elif env_config.normalize_moves > 0:
            self.obs_stats = measure_obs_stats(env_config, run.seed)
        start_frames = 0 if checkpoint is None else int(checkpoint["counters"]["frames"])
        self.envs = make_training_envs(env_config, config, run.seed + start_frames, self.obs_stats)
        self.agent = PPOAgent(
            config, self.envs.single_observation_space, int(self.envs.single_action_space.n), device
        )
        self.acting = copy.deepcopy(self.agent.policy) if config.overlap else None
        self.updates = 0
        if checkpoint is not None:
            self.agent.load_checkpoint(checkpoint)
            self.updates = int(checkpoint["counters"]["updates"])
        if self.acting is not None:
            self.acting.load_state_dict(self.agent.policy.state_dict())
        self.collector = RolloutCollector(
            self.envs,
            self.agent,
            config.num_steps,
            seed=run.seed + start_frames,
            acting_policy=self.acting,
        )
        self.collector.frames.total += start_frames
        if checkpoint is not None:
            self.collector.generator.set_state(checkpoint["sampler_rng"])
        self.frames = self.collector.frames.total
        self.sampler_state = self.collector.generator.get_state()
        self.background = ThreadPoolExecutor(1) if config.overlap else None
        self.pending: Future | None = None

    @staticmethod
    def identity(env_config: EnvConfig, config: PPOConfig) -> tuple[str, str, str]:
        return config.algo, env_config.actions, config.network

    def step(self, budget: Budget) -> Step:
        if self.pending is not None:
            rollout, episodes = self.pending.result()
            self.pending = None
            self.acting.load_state_dict(self.agent.policy.state_dict())
        else:
            rollout, episodes = self.collector.collect()
        self.frames = self.collector.frames.total
        self.sampler_state = self.collector.generator.get_state()
        last = self.done(budget)
        if self.background is not None and not last:
            self.pending = self.background.submit(self.collector.collect)
        metrics = self.agent.update(rollout, progress=budget.fraction(self.frames))
        self.updates += 1
        metrics["charts/updates"] = self.updates
        return Step(
            episodes, last=last, scalars=metrics, postfix={"kl": metrics["losses/approx_kl"]}
        )

    def checkpoint(self, run_dir: RunDir) -> dict[str, Any]:
        return {
            **self.agent.checkpoint(self.env_config, self.obs_stats),
            "counters": {"frames": self.frames, "updates": self.updates},
            "sampler_rng": self.sampler_state,
        }

    def start(self, run_dir: RunDir, logger: MetricsLogger) -> None:
        pass

    def done(self, budget: Budget) -> bool:
        return budget.spent(self.frames)

    def after_checkpoint(self, run_dir: RunDir) -> None:
        pass

    def close(self) -> None:
        if self.background is not None:
            self.background.shutdown(wait=True)
        self.envs.close()
        torch.set_num_threads(self.threads_before)
