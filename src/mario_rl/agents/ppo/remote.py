"""PPO rollouts from Ray actors (`mario-rl train --ray ADDRESS --env-actors N`).

Each actor owns `num_envs / N` envs (stepped in its own process) and a copy of the policy,
and collects a whole rollout per call: a Ray call costs milliseconds, an env step about a
third of one, so a call per step would spend more time in Ray than in the emulator. The
learner sends the weights once per rollout (`ray.put`, shared by every actor), joins the
actors' columns into one `Rollout` and updates on it as it does on a local one.

The actors sample their own actions: a Ray run is as reproducible as its actors' seeds
(`seed + frames + column`, like the local envs'), not bit-identical to a local run.

Fault tolerance: Ray restarts a dead actor (`ray_cluster.ACTOR_RESTARTS`); the learner
asks the new one for the rollout again. What the dead actor had emulated is lost: those
frames are not in the run's frame count, and `lost_rollouts` / `restarts` say how often
it happened.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from mario_rl.agents.ppo.agent import PPOAgent
from mario_rl.agents.ppo.config import PPOConfig
from mario_rl.agents.ppo.networks import ActorCritic
from mario_rl.agents.ppo.rollout import Rollout, RolloutCollector
from mario_rl.env.pipeline import EnvConfig
from mario_rl.env.snapshots import snapshot_wrapper_for
from mario_rl.env.vector import make_local_vector_env
from mario_rl.env.wrappers import ObservationStats
from mario_rl.integrations.ray_cluster import connect, gather, start_actors, stop_actors


class RolloutWorker:
    """One Ray actor's state: its envs and a policy copy. A plain class, made remote by
    `RayRolloutCollector` (so it also runs, and is tested, in this process)."""

    def __init__(
        self,
        env_config: EnvConfig,
        config: PPOConfig,
        num_envs: int,
        obs_stats: ObservationStats | None,
    ) -> None:
        torch.set_num_threads(1)  # one core per actor: its envs and its policy share it
        self.env_config, self.config, self.num_envs = env_config, config, num_envs
        self.obs_stats = obs_stats
        self.collector: RolloutCollector | None = None

    def pid(self) -> int:
        return os.getpid()

    def collect(self, weights: dict[str, torch.Tensor], seed: int) -> dict[str, Any]:
        """One rollout of this actor's envs acting with `weights`, as NumPy arrays.

        The first call (of this actor, or of a restarted one) builds the envs, seeded
        `seed`; later calls continue their episodes. "fresh" says which it was.
        """
        fresh = self.collector is None
        if self.collector is None:
            config = self.config
            wrapper = snapshot_wrapper_for(config)
            envs = make_local_vector_env(
                self.num_envs, self.env_config, seed, obs_stats=self.obs_stats, wrapper=wrapper
            )
            self.envs = envs
            agent = PPOAgent(
                config, envs.single_observation_space, int(envs.single_action_space.n), "cpu"
            )
            self.collector = RolloutCollector(envs, agent, config.num_steps, seed=seed)
        self.collector.policy.load_state_dict(weights)
        frames_before = self.collector.frames.total
        rollout, episodes = self.collector.collect()
        arrays = {name: value.numpy().copy() for name, value in vars(rollout).items()}
        return {
            **arrays,
            "frames": self.collector.frames.total - frames_before,
            "episodes": [stats for _, stats in episodes],
            "fresh": fresh,
        }


class RayRolloutCollector:
    """`RolloutCollector`'s interface (`collect`, `frames.total`, `num_envs`) over Ray
    actors: `actors` of them, `config.num_envs / actors` envs each, the columns of the
    rollout in actor order. `policy` is the network whose weights each `collect` sends
    (the agent's, or the copy an overlapping trainer refreshes)."""

    def __init__(
        self,
        env_config: EnvConfig,
        config: PPOConfig,
        policy: ActorCritic,
        device: torch.device,
        actors: int,
        seed: int,
        obs_stats: ObservationStats | None,
        address: str,
        start_frames: int = 0,
    ) -> None:
        if not isinstance(actors, int) or actors < 1 or config.num_envs % actors:
            raise ValueError(
                f"env actors: expected a divisor of num_envs={config.num_envs}, got {actors!r}"
            )
        self.ray, self.started_ray = connect(address, actors)
        self.policy, self.device, self.seed = policy, device, seed
        self.num_envs, self.per_actor = config.num_envs, config.num_envs // actors
        self.actors = start_actors(
            self.ray, RolloutWorker, actors, env_config, config, self.per_actor, obs_stats
        )
        self.frames = _FrameTotal(start_frames)
        self.started = [False] * actors
        self.lost_rollouts = 0
        self.restarts = 0

    def _seed(self, index: int) -> int:
        """Actor `index`'s env seed when it (re)starts: the run's seed moved on by the
        frames so far, as a resumed local run seeds its envs, plus its first column."""
        return self.seed + self.frames.total + index * self.per_actor

    def collect(self) -> tuple[Rollout, list[tuple[int, dict[str, Any]]]]:
        """Every actor's next rollout, joined; (frames so far, statistics) of each finished
        episode, all stamped with the frame count after this rollout."""
        ray = self.ray
        weights = ray.put({k: v.detach().cpu() for k, v in self.policy.state_dict().items()})
        pending = {
            i: actor.collect.remote(weights, self._seed(i)) for i, actor in enumerate(self.actors)
        }
        results, lost = gather(
            ray,
            pending,
            lambda index: self.actors[index].collect.remote(weights, self._seed(index)),
            "rollout",
        )
        self.lost_rollouts += lost
        for index, result in results.items():
            if result["fresh"] and self.started[index]:
                self.restarts += 1  # a new actor in its place: its episodes were cut
            self.started[index] = True
        ordered = [results[i] for i in range(len(self.actors))]
        rollout = Rollout(
            **{
                name: torch.from_numpy(np.concatenate([r[name] for r in ordered], axis=1)).to(
                    self.device
                )
                for name in Rollout.__dataclass_fields__
            }
        )
        self.frames.total += sum(r["frames"] for r in ordered)
        episodes = [(self.frames.total, stats) for r in ordered for stats in r["episodes"]]
        return rollout, episodes

    def close(self) -> None:
        """Stop the actors, and the Ray instance if this collector started it."""
        stop_actors(self.ray, self.actors, self.started_ray)
        self.actors = []


class _FrameTotal:
    """The one field of `FrameCounter` a trainer reads: the run's frame total."""

    def __init__(self, total: int) -> None:
        self.total = total
