"""DQN experience from Ray actors (`mario-rl train --preset dqn-fast --ray ... --env-actors N`).

As distributed replay designs do it: each actor steps `num_envs / N` envs epsilon-greedy
with a recent copy of the online network, `CHUNK_STEPS` vector steps per call (a Ray call
costs milliseconds, so never one call per step), and returns the transitions as arrays.
The learner stores them in its replay step by step, as it stores a local vector step, and
makes the updates they are owed while the actors collect the next chunk with the weights
of the updates before: their network is at most one chunk behind, and a chunk's epsilon is
the schedule's value at its start. The target network syncs after the updates of the
chunk whose steps cross a sync point, so up to a chunk (32 x num_envs agent steps) late.

A dead actor is restarted by Ray and asked again; its envs start new episodes (the replay
marks the cut ones truncated), the lost chunk's frames are not counted, and
`lost_chunks` / `restarts` say how often it happened.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mario_rl.env.pipeline import EnvConfig
from mario_rl.env.snapshots import snapshot_wrapper_for
from mario_rl.env.vector import FrameCounter, make_local_vector_env
from mario_rl.integrations.ray_cluster import connect, gather, start_actors, stop_actors
from mario_rl.nets import QNetwork
from mario_rl.runs import finished_episodes

if TYPE_CHECKING:
    from mario_rl.agents.dqn import DQNConfig

CHUNK_STEPS = 32
"""Vector steps an actor takes per call: 128 emulator frames per env at a 4-frame skip."""


class TransitionWorker:
    """One Ray actor's state: its envs and a Q-network copy. A plain class, made remote by
    `RayTransitionCollector` (so it also runs, and is tested, in this process)."""

    def __init__(self, env_config: EnvConfig, config: DQNConfig, num_envs: int) -> None:
        torch.set_num_threads(1)  # one core per actor: its envs and its network share it
        self.env_config, self.config, self.num_envs = env_config, config, num_envs
        self.envs: Any = None

    def pid(self) -> int:
        return os.getpid()

    def _start(self, seed: int) -> np.ndarray:
        config = self.config
        wrapper = snapshot_wrapper_for(config)
        self.envs = make_local_vector_env(self.num_envs, self.env_config, wrapper=wrapper)
        space = self.envs.single_observation_space
        self.num_actions = int(self.envs.single_action_space.n)
        self.network = QNetwork(
            tuple(space.shape), self.num_actions, config.network, config.dueling
        ).eval()
        self.rng = np.random.default_rng(seed)
        self.obs, info = self.envs.reset(seed=seed)
        self.frames = FrameCounter(self.num_envs)
        self.frames.start(info)
        return self.obs.copy()

    @torch.no_grad()
    def collect(
        self,
        weights: dict[str, torch.Tensor],
        epsilon: float,
        seed: int,
        steps: int,
        fresh: bool = False,
    ) -> dict[str, Any]:
        """`steps` epsilon-greedy vector steps acting with `weights`, as arrays.

        The first call (of this actor, or of a restarted one) builds the envs, seeded
        `seed`, and returns their first observations as "first_obs"; later calls continue
        the episodes (and "first_obs" is None). `fresh` builds them anew even so: a call
        sent again after a lost one, whose steps the learner never stored. "new_actor"
        says the envs were built because this actor had none (a first call, or a restart).
        """
        first_obs = None
        new_actor = self.envs is None
        if new_actor or fresh:
            if self.envs is not None:
                self.envs.close()
            first_obs = self._start(seed)
        self.network.load_state_dict(weights)
        frames_before = self.frames.total
        n = self.num_envs
        actions = np.zeros((steps, n), np.int64)
        rewards = np.zeros((steps, n), np.float32)
        terminated = np.zeros((steps, n), bool)
        truncated = np.zeros((steps, n), bool)
        next_obs = np.zeros((steps, *self.obs.shape), self.obs.dtype)
        final_obs: dict[tuple[int, int], np.ndarray] = {}
        episodes: list[dict[str, Any]] = []
        for t in range(steps):
            chosen = self.rng.integers(0, self.num_actions, n)
            greedy = self.rng.random(n) >= epsilon
            if greedy.any():
                q = self.network(torch.as_tensor(self.obs[greedy]))
                chosen[greedy] = q.argmax(dim=1).numpy()
            obs, reward, term, trunc, info = self.envs.step(chosen)
            self.frames.update(info)
            actions[t], rewards[t], terminated[t], truncated[t] = chosen, reward, term, trunc
            next_obs[t] = obs
            for i in np.flatnonzero(term | trunc):
                final_obs[(t, int(i))] = info["final_obs"][i]
            episodes += finished_episodes(info)
            self.obs = obs
        return {
            "first_obs": first_obs,
            "new_actor": new_actor,
            "actions": actions,
            "rewards": rewards,
            "terminated": terminated,
            "truncated": truncated,
            "next_obs": next_obs,
            "final_obs": final_obs,
            "frames": self.frames.total - frames_before,
            "episodes": episodes,
        }


class RayTransitionCollector:
    """`actors` Ray actors, `config.num_envs / actors` envs each (the replay's columns in
    actor order). `submit` starts every actor's next chunk; `receive` waits for them and
    returns them in order, asking a restarted actor again when one died."""

    def __init__(
        self, env_config: EnvConfig, config: DQNConfig, actors: int, seed: int, address: str
    ) -> None:
        if not isinstance(actors, int) or actors < 1 or config.num_envs % actors:
            raise ValueError(
                f"env actors: expected a divisor of num_envs={config.num_envs}, got {actors!r}"
            )
        self.ray, self.started_ray = connect(address, actors)
        self.seed, self.per_actor = seed, config.num_envs // actors
        self.actors = start_actors(
            self.ray, TransitionWorker, actors, env_config, config, self.per_actor
        )
        self.pending: dict[int, Any] = {}
        self.call: tuple[Any, float, int] | None = None
        self.lost_chunks = 0
        self.restarts = 0
        self.started = [False] * actors

    def _send(self, index: int, fresh: bool = False) -> Any:
        """Actor `index`'s call for the chunk `submit` asked for; `fresh` for a call sent
        again, which starts new episodes (the actor may have lived on and stepped its envs
        past what the learner stored)."""
        weights, epsilon, frames = self.call
        seed = self.seed + frames + index * self.per_actor
        return self.actors[index].collect.remote(weights, epsilon, seed, CHUNK_STEPS, fresh)

    def submit(self, weights: dict[str, torch.Tensor], epsilon: float, frames: int) -> None:
        """Start each actor's next chunk with `weights` and `epsilon`; `frames` (the run's,
        counting every chunk received) moves on the seed of an actor that starts or
        restarts."""
        cpu_weights = {name: value.detach().cpu() for name, value in weights.items()}
        self.call = (self.ray.put(cpu_weights), epsilon, frames)
        self.pending = {index: self._send(index) for index in range(len(self.actors))}

    def receive(self) -> list[dict[str, Any]]:
        """The chunks `submit` started, in actor order."""
        pending, self.pending = self.pending, {}
        results, lost = gather(
            self.ray, pending, lambda index: self._send(index, fresh=True), "chunk"
        )
        self.lost_chunks += lost
        for index, result in results.items():
            # A new actor in its place (not a live one asked again): its episodes were cut.
            if result["new_actor"] and self.started[index]:
                self.restarts += 1
            self.started[index] = True
        return [results[index] for index in range(len(self.actors))]

    def close(self) -> None:
        """Stop the actors, and the Ray instance if this collector started it."""
        stop_actors(self.ray, self.actors, self.started_ray)
        self.actors = []
