"""`PPOTrainer`: the PPO loop as a `mario_rl.runs.Trainer`."""

from __future__ import annotations

import copy
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
from gymnasium.vector import VectorEnv

from mario_rl.agents.ppo.agent import PPOAgent
from mario_rl.agents.ppo.config import PPOConfig
from mario_rl.agents.ppo.networks import with_more_actions
from mario_rl.agents.ppo.remote import RayRolloutCollector
from mario_rl.agents.ppo.rollout import RolloutCollector
from mario_rl.env.pipeline import EnvConfig, make_env, measure_obs_stats
from mario_rl.env.snapshots import snapshot_wrapper_for
from mario_rl.env.vector import make_vector_env_groups
from mario_rl.env.wrappers import ObservationStats
from mario_rl.runs import Budget, MetricsLogger, RunConfig, RunDir, Step
from mario_rl.stopping import stop_signals_deferred

# --------------------------------------------------------------------------- training


TORCH_THREADS = 1
"""Torch threads while training: with two, torch spins on the cores the env workers need
and collection runs 4-5x slower (measured on 2 cores)."""


def make_training_envs(
    env_config: EnvConfig, config: PPOConfig, seed: int, obs_stats: ObservationStats | None
) -> list[VectorEnv]:
    """`num_envs` worker processes in `env_groups` groups; with `snapshot_start_probability`
    or `death_start_probability`, each keeps its own snapshot pools."""
    wrapper = snapshot_wrapper_for(config)
    return make_vector_env_groups(
        config.num_envs, config.env_groups, env_config, seed, obs_stats=obs_stats, wrapper=wrapper
    )


class PPOTrainer:
    """The PPO loop as a `mario_rl.runs.Trainer`: each `step` takes the next rollout, starts
    collecting the one after it in the background (`overlap`), and updates on it, annealing
    the learning rate and entropy weight by the budget's used fraction.

    `frames`, and what `checkpoint` saves, are those of the last rollout learned from: a
    rollout being collected in the background is not part of a checkpoint. A resumed run
    continues the networks, optimiser, statistics, counters and sampling RNG. Not the env
    workers' pools of snapshot and death starts (`env.snapshots`, kept in each worker
    process): they start empty again, as at a run's start, so until an env's first episode
    and death of the resumed run its practice starts are the level's real start.
    """

    @staticmethod
    def grows_actions(config: PPOConfig) -> bool:
        """Whether a warm start may go on into an action set that extends the checkpoint's
        (more actions after its own: `mario_rl.training.check_warm_start_identity`): not
        with the ICM, whose inverse model predicts the action."""
        return not config.uses_icm

    ray_actors = True
    """`RunConfig.ray` may put its envs on Ray actors (`remote.RayRolloutCollector`)."""

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
            self.obs_stats = measure_obs_stats(env_config, run.seed, progress=run.progress)
        start_frames = 0 if checkpoint is None else int(checkpoint["counters"]["frames"])
        self.remote = run.ray is not None
        if self.remote:
            self.env_groups = []
            probe = make_env(env_config, obs_stats=self.obs_stats)
            obs_space, num_actions = probe.observation_space, int(probe.action_space.n)
            probe.close()
        else:
            self.env_groups = make_training_envs(
                env_config, config, run.seed + start_frames, self.obs_stats
            )
            envs = self.env_groups[0]
            obs_space, num_actions = envs.single_observation_space, int(envs.single_action_space.n)
        self.agent = PPOAgent(config, obs_space, num_actions, device)
        self.acting = copy.deepcopy(self.agent.policy) if config.overlap else None
        self.updates = 0
        if checkpoint is not None:
            self.agent.load_checkpoint(checkpoint)
            self.updates = int(checkpoint["counters"]["updates"])
        if self.acting is not None:
            self.acting.load_state_dict(self.agent.policy.state_dict())
        self.collector: RolloutCollector | RayRolloutCollector
        if self.remote:
            self.collector = RayRolloutCollector(
                env_config,
                config,
                self.acting if self.acting is not None else self.agent.policy,
                device,
                run.env_actors,
                run.seed,
                self.obs_stats,
                run.ray,
                start_frames,
            )
            # The actors draw their own actions: no sampler state to keep (remote.py).
            self.sampler_state = None
        else:
            self.collector = RolloutCollector(
                self.env_groups,
                self.agent,
                config.num_steps,
                seed=run.seed + start_frames,
                acting_policy=self.acting,
            )
            self.collector.frames.total += start_frames
            if checkpoint is not None and checkpoint.get("sampler_rng") is not None:
                self.collector.generator.set_state(checkpoint["sampler_rng"])
            self.sampler_state = self.collector.generator.get_state()
        self.frames = self.collector.frames.total
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
        if not self.remote:
            self.sampler_state = self.collector.generator.get_state()
        last = self.done(budget)
        if self.background is not None and not last:
            self.pending = self.background.submit(self.collector.collect)
        # The rollout's frames are counted: a stop now would checkpoint them with half an
        # update made and never log the rollout's episodes, so the update is finished first.
        with stop_signals_deferred() as stops:
            metrics = self.agent.update(rollout, progress=budget.schedule(self.frames))
        self.updates += 1
        metrics["charts/updates"] = self.updates
        if self.remote:
            metrics["charts/lost_rollouts"] = self.collector.lost_rollouts
            metrics["charts/actor_restarts"] = self.collector.restarts
        return Step(
            episodes,
            last=last,
            scalars=metrics,
            postfix={"kl": metrics["losses/approx_kl"]},
            stop=stops[0] if stops else None,
        )

    def init_weights(self, checkpoint: dict[str, Any]) -> None:
        """Start from `checkpoint`'s actor-critic (and ICM, when both have one); the
        optimiser, counters and schedules start fresh. `mario_rl.training.check_warm_start`
        has checked the observations match (and are not normalised). Into an action set
        that extends the checkpoint's, the new actions start as `with_more_actions` puts
        them."""
        state, more = checkpoint["model_state"], self.agent.num_actions - checkpoint["num_actions"]
        if more > 0:  # an action set that extends the checkpoint's (`grows_actions`)
            state = with_more_actions(state, more)
        self.agent.policy.load_state_dict(state)
        if self.agent.icm is not None and checkpoint.get("icm_state") is not None:
            self.agent.icm.load_state_dict(checkpoint["icm_state"])
        if self.acting is not None:
            self.acting.load_state_dict(self.agent.policy.state_dict())

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
        for envs in self.env_groups:
            envs.close()
        if self.remote:
            self.collector.close()
        torch.set_num_threads(self.threads_before)
