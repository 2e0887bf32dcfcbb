"""PPO with GAE, and curiosity (an Intrinsic Curiosity Module) as an optional reward.

Read in this order, each file top to bottom: `config` (PPOConfig; presets: `mario_rl.presets`),
`losses` (the maths as pure functions: GAE, the clipped policy loss, the value loss,
entropy, surprisal), `networks` (the conv torso and the actor-critic), `icm` (the curiosity
module and the running statistics that scale its surprisal into a reward), `rollout` (the rollout
storage and its collection from a vector env), `agent` (the agent that acts and updates,
and the policy of a checkpoint), `trainer` (the loop `mario-rl train` runs through
`mario_rl.training`). At its core it is only this, plus the budget, logging and
checkpoints of the runner (and, with `overlap`, the next `collect` running in a second
thread while `update` learns from the last rollout):

    agent = PPOAgent(config, envs.single_observation_space, envs.single_action_space.n)
    collector = RolloutCollector(envs, agent, config.num_steps, seed)
    while not budget.spent(collector.frames.total):
        rollout, episodes = collector.collect()
        metrics = agent.update(rollout, progress=budget.schedule(collector.frames.total))

References: PPO, Schulman et al. 2017, "Proximal Policy Optimization Algorithms" (eq. 7:
the clipped surrogate; eq. 9: the combined loss); GAE, Schulman et al. 2016,
"High-Dimensional Continuous Control Using Generalized Advantage Estimation" (eq. 16);
ICM, Pathak et al. 2017, "Curiosity-driven Exploration by Self-supervised Prediction"
(eq. 2-7); the forward model's residual blocks and the `return-std` normalisation of
surprisal (by the std of its discounted return) follow Burda et al. 2018, "Large-Scale
Study of Curiosity-Driven Learning"; the default `surprisal-std` (each env's surprisal by
its own std) is ours.
"""

from mario_rl.agents.ppo.agent import (
    PPOAgent,
    policy_from_checkpoint,
)
from mario_rl.agents.ppo.config import (
    INVERSE_HIDDEN,
    NETWORKS,
    REWARD_MODES,
    PPOConfig,
    RewardMode,
)
from mario_rl.agents.ppo.icm import (
    ICM,
    DiscountedReturnFilter,
    ForwardResidualBlock,
    ICMLosses,
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
    ppo_clip_loss_per_element,
    surprisal,
    value_loss,
)
from mario_rl.agents.ppo.networks import (
    ActorCritic,
    image_torso,
    orthogonal_init,
)
from mario_rl.agents.ppo.rollout import (
    Rollout,
    RolloutCollector,
    act,
)
from mario_rl.agents.ppo.trainer import (
    TORCH_THREADS,
    PPOTrainer,
    make_training_envs,
)

__all__ = [
    "ICM",
    "INVERSE_HIDDEN",
    "NETWORKS",
    "REWARD_MODES",
    "TORCH_THREADS",
    "ActorCritic",
    "DiscountedReturnFilter",
    "ForwardResidualBlock",
    "ICMLosses",
    "PPOAgent",
    "PPOConfig",
    "PPOTrainer",
    "RewardMode",
    "Rollout",
    "RolloutCollector",
    "RunningMeanStd",
    "act",
    "annealed_entropy_coef",
    "annealed_learning_rate",
    "compute_gae",
    "entropy",
    "entropy_floor_loss",
    "explained_variance",
    "image_torso",
    "make_training_envs",
    "normalize_by_return_std",
    "normalize_per_env",
    "orthogonal_init",
    "policy_from_checkpoint",
    "ppo_clip_loss",
    "ppo_clip_loss_per_element",
    "surprisal",
    "value_loss",
]
