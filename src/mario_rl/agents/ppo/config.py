"""PPO's settings, `PPOConfig`; the write-ups' named settings and ours are in
`mario_rl.presets`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mario_rl.env.snapshots import SnapshotStarts
from mario_rl.env.vector import check_env_groups

RewardMode = Literal["extrinsic", "intrinsic", "mixed"]
REWARD_MODES: tuple[str, ...] = ("extrinsic", "intrinsic", "mixed")
INTRINSIC_NORMALIZATIONS: tuple[str, ...] = ("surprisal-std", "return-std")
"""How surprisal is scaled into a reward: see `PPOConfig.intrinsic_normalization`."""
TERMINAL_NEXT_OBS: tuple[str, ...] = ("final", "next-start")
"""What a terminated step stores as its next observation: see `PPOConfig.terminal_next_obs`."""
NETWORKS: tuple[str, ...] = ("nature", "small")
"""Torso names: the Nature CNN (made for 84x84) and the ICM paper's small torso (made for
42x42; `ppo-levels-hires` runs it on 84x84), each sized to its frames (the Nature CNN's
three layers need at least 36x36)."""
INVERSE_HIDDEN = 256
"""Hidden width of the ICM's inverse model (Pathak et al. 2017, section 3)."""


# --------------------------------------------------------------------------- config


@dataclass
class PPOConfig(SnapshotStarts):
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
    entropy_floor: float = 0.0
    """Nats of policy entropy under which a state's policy is pulled toward the uniform one
    (0: off; must be below the log of the action count): the loss adds `entropy_floor_coef`
    times the mean over states of KL(uniform || policy), counted for the states under the
    floor only. The bonus weighs every state alike and its pull fades as a policy
    saturates; this one does not (`losses.entropy_floor_loss`)."""
    entropy_floor_coef: float = 0.1
    """Weight of the entropy floor's loss in the combined loss."""
    max_grad_norm: float = 0.5
    """Clip the gradient norm of the policy and of the ICM (each separately) to this."""
    network: str = "nature"
    """Torso of the policy and of the ICM's encoder: `nature` (the Nature CNN) or `small` (the
    ICM paper's four stride-2 convolutions), each sized to the frames it is given."""
    reward_mode: RewardMode = "extrinsic"
    """`extrinsic`: game reward; `intrinsic`: surprisal only; `mixed`: game + c x surprisal."""
    reward_scale: float = 1.0
    """The game reward is multiplied by this before learning (logged returns are unscaled)."""
    intrinsic_coef: float = 0.01
    """c in `mixed` mode: weight of the normalised surprisal next to the scaled game reward."""
    intrinsic_normalization: str = "surprisal-std"
    """How surprisal becomes a reward: `surprisal-std`, each env's surprisal over that env's
    running std of it (rewards of about 1 a step, returns near 1 / (1 - gamma)); or
    `return-std`, over the running std of the surprisal's discounted return, one scale for
    all envs (Burda et al. 2018; small rewards, returns that spread by about 1, so a value
    loss sharing the policy's torso does not drown the policy's gradient)."""
    icm_forward_weight: float = 0.2
    """beta of Pathak et al. eq. 7: ICM loss = (1 - beta) inverse + beta forward."""
    icm_residual_blocks: int = 4
    """Residual blocks in the ICM's forward model (Burda et al. use 4)."""
    terminal_next_obs: str = "final"
    """What a step that ended its episode (a death, the flag) stores as the next
    observation, the one the ICM pairs it with: `final`, the episode's own last observation
    (Gymnasium's `final_obs`); or `next-start`, the next episode's first, as a rollout that
    ignores `final_obs` stores it. The curiosity write-up warns that this jump is the least
    predictable transition there is, so its surprisal pays for dying: `next-start` is the
    ablation that measures it. Values never bootstrap past a termination, so only the ICM
    (its reward and its training) sees the difference."""
    overlap: bool = False
    """Collect the next rollout while updating on the last one; acting then lags the
    learner by one update, which the clipped ratio absorbs."""
    env_groups: int = 1
    """Step the envs' worker processes in this many groups, in turn, so the policy acts on
    one group while the others emulate (a divisor of `num_envs`). Speed only: the rollouts
    are the same for any number of groups."""

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
        check_env_groups(self.num_envs, self.env_groups)
        named_choices = {
            "reward_mode": REWARD_MODES,
            "intrinsic_normalization": INTRINSIC_NORMALIZATIONS,
            "terminal_next_obs": TERMINAL_NEXT_OBS,
            "network": NETWORKS,
        }
        for name, choices in named_choices.items():
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
        if not 0.0 <= self.icm_forward_weight <= 1.0:
            raise ValueError(f"icm_forward_weight: expected 0..1, got {self.icm_forward_weight}")
        super().__post_init__()
        if not self.reward_scale > 0:
            raise ValueError(f"reward_scale: expected a positive number, got {self.reward_scale}")
        if not self.entropy_floor >= 0.0:
            raise ValueError(f"entropy_floor: expected nats >= 0, got {self.entropy_floor!r}")
        for name in ("entropy_coef", "entropy_coef_end", "entropy_floor_coef"):
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
