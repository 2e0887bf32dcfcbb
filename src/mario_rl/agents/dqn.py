"""DQN and Double DQN on pixels, readable top to bottom: config, maths, network, loop.

DQN: Mnih et al. 2015 (Nature), "Human-level control through deep reinforcement learning".
Double DQN: van Hasselt et al. 2016, "Deep Reinforcement Learning with Double Q-learning".
Options from Rainbow (Hessel et al. 2018): n-step returns, the dueling head and
proportional prioritised replay (Schaul et al. 2016).

The loop acts with epsilon-greedy in `num_envs` envs, stores each step in a `FrameReplay`,
and after `burn_in` agent steps does one gradient update per `learn_every` agent steps,
copying the online network to the target network every `target_sync_every` agent steps.
With worker-process envs the envs emulate the next step while the learner updates.
With `snapshot_start_probability`, some training episodes start from states along the env's
own best runs; `episodes.csv` and the episode curves hold only episodes from the level's real
start.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from mario_rl.agents import Policy
from mario_rl.env.pipeline import EnvConfig, make_env
from mario_rl.env.snapshots import SnapshotStarts, snapshot_wrapper_for
from mario_rl.env.vector import (
    FrameCounter,
    StepsInTurn,
    check_env_groups,
    drop_pending_step,
    group_columns,
    make_vector_env_groups,
)
from mario_rl.nets import QNetwork, adam, load_optimizer_state, network_name, on_device
from mario_rl.replay import FrameReplay, PrioritizedFrameReplay
from mario_rl.runs import (
    Budget,
    MetricsLogger,
    RunConfig,
    RunDir,
    Step,
    atomic_save,
    finished_episodes,
    load_plain_data,
    replay_path,
)

LOSSES = ("huber", "l1", "mse")
EPSILON_SCHEDULES = ("multiplicative", "three_phase")


@dataclass
class DQNConfig(SnapshotStarts):
    """The DQN family's settings. Step counts are agent steps (transitions, all envs)."""

    double: bool = True
    """Double DQN target (online net picks the next action, target net values it)."""
    network: str = "nature"
    """Torso (`mario_rl.nets.NETWORKS`): `nature` (the Nature CNN), `small` or `small-relu`
    (the ICM paper's CNN for 42x42, with ELU or ReLU), or `mlp` (flat observations)."""
    dueling: bool = False
    """Dueling head: Q = V + A - mean(A)."""
    gamma: float = 0.9
    """Discount per agent step."""
    n_step: int = 1
    """Rewards summed before bootstrapping (1: the classic one-step target)."""
    learning_rate: float = 2.5e-4
    """Adam step size."""
    adam_eps: float = 1e-8
    """Adam epsilon."""
    batch_size: int = 32
    """Transitions per gradient update."""
    replay_size: int = 100_000
    """Transitions the replay holds."""
    replay_on_device: bool = False
    """Keep the replay's frames on the training device (the GPU, if used)."""
    prioritized: bool = False
    """Prioritised replay: draw transitions in proportion to |TD error|^alpha."""
    priority_alpha: float = 0.6
    """How much priority counts (0: uniform). Schaul et al.'s proportional setting."""
    priority_beta_start: float = 0.4
    """Importance-sampling exponent at the start, annealed linearly to 1 over the budget
    (a run resumed with a larger budget goes on from its share of the new one)."""
    burn_in: int = 100_000
    """Agent steps of acting before the first update."""
    learn_every: int = 3
    """Agent steps per gradient update (the replay ratio is batch_size / learn_every)."""
    target_sync_every: int = 10_000
    """Agent steps between copies of the online net into the target net (0: no target net)."""
    loss: str = "huber"
    """TD loss: `huber` (smooth L1, delta 1), `l1` or `mse`."""
    max_grad_norm: float = 0.0
    """Clip the gradient's global norm to this (0: no clipping)."""
    epsilon_schedule: str = "multiplicative"
    """`multiplicative` (start x decay^step, floored at end) or `three_phase` (Keras blog)."""
    epsilon_start: float = 1.0
    """Exploration rate at step 0."""
    epsilon_end: float = 0.1
    """Exploration floor."""
    epsilon_decay: float = 0.99999975
    """Multiplicative: factor applied per agent step."""
    epsilon_observe: int = 0
    """Three-phase: agent steps held at epsilon_start before annealing."""
    epsilon_anneal: int = 1_000_000
    """Three-phase: agent steps of linear annealing from epsilon_start to epsilon_end."""
    reward_scale: float = 1.0
    """Factor on the env's reward before it is stored (0.1 puts Mario's per-step progress
    reward near 0..1 and a death at -1.5: unit-scale TD targets)."""
    num_envs: int = 1
    """Envs stepped together (one replay stream each)."""
    env_groups: int = 1
    """Step the envs in this many groups, in turn: the network acts on one group's
    observations while the others' workers emulate. A divisor of `num_envs`; speed only,
    the run is the same for any number of groups."""
    worker_processes: bool = True
    """Run envs in worker processes, emulating while the learner updates."""
    torch_threads: int = 0
    """Threads torch may use on the CPU (0: the cores left over by the env workers)."""
    learner_thread: bool = False
    """Make each gradient update in a second thread while this one steps, stores and acts:
    one update is always in flight, so the envs act with the weights of the update before
    it (one update staler than without). Batches are drawn and priorities written back
    here, at the same points of every run, so a seed still fixes the run."""

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss: expected one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.epsilon_schedule not in EPSILON_SCHEDULES:
            raise ValueError(
                f"epsilon_schedule: expected one of {', '.join(EPSILON_SCHEDULES)}, "
                f"got {self.epsilon_schedule!r}"
            )
        super().__post_init__()
        if self.reward_scale <= 0:
            raise ValueError(f"reward_scale: expected a positive number, got {self.reward_scale}")
        for name in ("n_step", "batch_size", "learn_every", "num_envs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if not 0.0 <= self.priority_beta_start <= 1.0:
            raise ValueError(
                f"priority_beta_start: expected a number in [0, 1], got {self.priority_beta_start}"
            )
        check_env_groups(self.num_envs, self.env_groups)
        if self.replay_size < 2 * self.num_envs * (self.n_step + 4):
            raise ValueError(f"replay_size: expected a larger replay, got {self.replay_size}")

    @property
    def algo(self) -> str:
        return "ddqn" if self.double else "dqn"


# -- the maths: pure functions ---------------------------------------------------------------


def multiplicative_epsilon(step: int, start: float, decay: float, floor: float) -> float:
    """start * decay^step, never below `floor` (TensorFlow blog, PyTorch tutorial)."""
    return max(floor, start * decay**step)


def three_phase_epsilon(step: int, start: float, end: float, observe: int, anneal: int) -> float:
    """`start` for `observe` steps, linear to `end` over `anneal` steps, then `end` (Keras blog)."""
    if step < observe:
        return start
    if anneal <= 0 or step >= observe + anneal:
        return end
    return start + (end - start) * (step - observe) / anneal


def epsilon_at(step: int, config: DQNConfig) -> float:
    if config.epsilon_schedule == "multiplicative":
        return multiplicative_epsilon(
            step, config.epsilon_start, config.epsilon_decay, config.epsilon_end
        )
    return three_phase_epsilon(
        step,
        config.epsilon_start,
        config.epsilon_end,
        config.epsilon_observe,
        config.epsilon_anneal,
    )


def dqn_target(
    returns: torch.Tensor, discounts: torch.Tensor, next_q_target: torch.Tensor
) -> torch.Tensor:
    """y = R + discount * max_a Q_target(s', a)  (Mnih et al. 2015, eq. 2 / Algorithm 1).

    `returns` and `discounts` come from the replay: r (or an n-step sum) and gamma^n, zero
    after a terminal state.
    """
    return returns + discounts * next_q_target.max(dim=1).values


def double_dqn_target(
    returns: torch.Tensor,
    discounts: torch.Tensor,
    next_q_online: torch.Tensor,
    next_q_target: torch.Tensor,
) -> torch.Tensor:
    """y = R + discount * Q_target(s', argmax_a Q_online(s', a))  (van Hasselt et al., eq. 4)."""
    best = next_q_online.argmax(dim=1, keepdim=True)
    return returns + discounts * next_q_target.gather(1, best).squeeze(1)


def td_loss(
    q_taken: torch.Tensor, targets: torch.Tensor, kind: str, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean TD loss: `huber` (quadratic within 1, linear beyond), `l1` or `mse`.

    `weights` (prioritised replay's importance-sampling weights) scale each transition's
    loss before the mean.
    """
    if kind == "huber":
        losses = F.smooth_l1_loss(q_taken, targets, reduction="none")
    elif kind == "l1":
        losses = F.l1_loss(q_taken, targets, reduction="none")
    else:
        losses = F.mse_loss(q_taken, targets, reduction="none")
    return (losses if weights is None else losses * weights).mean()


if TYPE_CHECKING:
    from mario_rl.agents.dqn_remote import RayTransitionCollector


# -- envs, network and checkpoints ------------------------------------------------------------


def make_envs(env_config: EnvConfig, config: DQNConfig, seed: int) -> list[VectorEnv]:
    """`num_envs` pipelines as `env_groups` vector envs, stepped in turn: worker processes,
    or in this process (SAME_STEP autoreset). Env i, counted across the groups in order, is
    seeded with `seed + i`.

    With `snapshot_start_probability` or `death_start_probability`, each env keeps its
    own snapshot pools.
    """
    wrapper = snapshot_wrapper_for(config)
    if config.worker_processes:
        return make_vector_env_groups(
            config.num_envs, config.env_groups, env_config, seed=seed, wrapper=wrapper
        )

    def build() -> gym.Env:
        env = make_env(env_config)
        return wrapper(env) if wrapper else env

    size = config.num_envs // config.env_groups
    return [
        SyncVectorEnv([build] * size, autoreset_mode=AutoresetMode.SAME_STEP)
        for _ in range(config.env_groups)
    ]


def torch_threads(config: DQNConfig) -> int:
    """`config.torch_threads`, or the cores the env workers leave free (at least one).

    Letting torch spread over cores the emulators are using slows both down several times.
    """
    if config.torch_threads:
        return config.torch_threads
    workers = config.num_envs if config.worker_processes else 0
    return max(1, (os.cpu_count() or 1) - workers)


def replay_stack(env_config: EnvConfig) -> int:
    """Frames stacked across steps (the replay rebuilds them); 1 when there is no such stack."""
    return env_config.frame_stack if env_config.frame_stack > 1 else 1


def policy_from_checkpoint(checkpoint: dict[str, Any], device: torch.device) -> Policy:
    """The greedy Q policy of a DQN checkpoint (the `mario_rl.agents` interface)."""
    agent = DQNConfig(**checkpoint["agent_config"])
    env_config = EnvConfig(**checkpoint["env_config"])
    num_actions = int(checkpoint["num_actions"])
    net = QNetwork(tuple(checkpoint["obs_shape"]), num_actions, agent.network, agent.dueling)
    net.load_state_dict(checkpoint["model_state"])
    net.to(device).eval()

    @torch.no_grad()
    def greedy(obs: np.ndarray) -> np.ndarray:
        return net(torch.as_tensor(obs, device=device)).argmax(dim=1).cpu().numpy()

    return Policy(checkpoint["algo"], env_config, num_actions, greedy)


@dataclass
class Counters:
    """Progress a resumed run continues from."""

    frames: int = 0
    steps: int = 0
    updates: int = 0
    syncs: int = 0


# -- the learner ----------------------------------------------------------------------------


class DQNLearner:
    """The online and target networks, the optimiser, and one gradient update.

    `update` samples a batch from a replay, builds the (Double) DQN n-step target, steps
    the optimiser on the TD loss and, for a prioritised replay, writes the new TD errors
    back as priorities. The training loop and `benchmarks/bench_dqn.py` use this one update.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        config: DQNConfig,
        device: torch.device,
    ) -> None:
        self.config, self.device = config, device
        self.online = on_device(
            QNetwork(obs_shape, num_actions, config.network, config.dueling), device
        )
        self.target = copy.deepcopy(self.online) if config.target_sync_every else self.online
        self.optimizer = adam(self.online.parameters(), config.learning_rate, config.adam_eps)

    def update(self, replay: FrameReplay, used: float = 0.0) -> tuple[float, float]:
        """One gradient update on a batch of `replay`; `used` (0..1, the budget's share
        spent) anneals a prioritised replay's importance-sampling exponent beta to 1.
        Returns (TD loss, max Q of the batch)."""
        batch = self.sample(replay, used)
        loss, q_max, td_errors = self.learn(batch)
        self.write_priorities(replay, batch, td_errors)
        return loss, q_max

    def sample(self, replay: FrameReplay, used: float = 0.0) -> Any:
        """`update`'s batch: drawn from `replay` (prioritised: with beta annealed by `used`)."""
        config = self.config
        if isinstance(replay, PrioritizedFrameReplay):
            beta = config.priority_beta_start + (1.0 - config.priority_beta_start) * used
            return replay.sample(config.batch_size, config.n_step, config.gamma, beta)
        return replay.sample(config.batch_size, config.n_step, config.gamma)

    def learn(self, batch: Any) -> tuple[float, float, np.ndarray]:
        """`update`'s gradient step on a sampled batch, touching no replay (so it can run in
        another thread); returns (TD loss, max Q, the TD errors for the priorities)."""
        config, device = self.config, self.device
        q = self.online(batch.obs.to(device, non_blocking=True))
        q_taken = q.gather(1, batch.actions.to(device)[:, None]).squeeze(1)
        with torch.no_grad():
            next_obs = batch.next_obs.to(device, non_blocking=True)
            next_q_target = self.target(next_obs)
            returns, discounts = batch.returns.to(device), batch.discounts.to(device)
            if config.double:
                online_next = self.online(next_obs)
                targets = double_dqn_target(returns, discounts, online_next, next_q_target)
            else:
                targets = dqn_target(returns, discounts, next_q_target)
        weights = None if batch.weights is None else batch.weights.to(device)
        loss = td_loss(q_taken, targets, config.loss, weights)
        td_errors = (targets - q_taken).detach().cpu().numpy()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.online.parameters(), config.max_grad_norm)
        self.optimizer.step()
        return loss.item(), q.detach().max().item(), td_errors

    @staticmethod
    def write_priorities(replay: FrameReplay, batch: Any, td_errors: np.ndarray) -> None:
        """A prioritised replay's new priorities for `batch`, from its TD errors."""
        if isinstance(replay, PrioritizedFrameReplay):
            replay.update_priorities(batch.indices, td_errors)

    def sync_target(self) -> None:
        """Copy the online network into the target network."""
        self.target.load_state_dict(self.online.state_dict())

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint fields of the networks and the optimiser."""
        return {
            "model_state": self.online.state_dict(),
            "target_state": self.target.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.online.load_state_dict(state["model_state"])
        self.target.load_state_dict(state["target_state"])
        load_optimizer_state(self.optimizer, state["optimizer_state"])


# -- the training loop ------------------------------------------------------------------------


class DQNTrainer:
    """The DQN loop as a `mario_rl.runs.Trainer`: each `step` acts in every env, does the
    updates those agent steps are due, syncs the target network and stores the transitions.

    A resumed run continues its counters, schedules, networks, optimizer, exploration RNG,
    and the replay if it was saved. `envs_fn(seed)` swaps in other envs (tests); they must
    put `frames` and `episode` in their infos as `make_env` does. With `RunConfig.ray`,
    Ray actors collect the transitions a chunk at a time instead (`dqn_remote`).
    """

    ray_actors = True

    def __init__(
        self,
        run: RunConfig,
        env_config: EnvConfig,
        config: DQNConfig,
        device: torch.device,
        checkpoint: dict[str, Any] | None = None,
        envs_fn: Callable[[int], VectorEnv] | None = None,
    ) -> None:
        if env_config.normalize_moves > 0:
            # Each vector env (and each Ray actor) would measure its own statistics, and
            # the checkpoint would keep none for evaluation (PPO keeps them).
            raise ValueError(
                "normalize_moves: the DQN agents do not carry a measured normalisation into "
                f"their checkpoints; expected 0, got {env_config.normalize_moves}"
            )
        self.run, self.env_config, self.config, self.device = run, env_config, config, device
        self.algo = config.algo
        self.network = network_name(config.network, config.dueling)
        self.threads_before = torch.get_num_threads()
        torch.set_num_threads(torch_threads(config))
        self.counters = Counters() if checkpoint is None else Counters(**checkpoint["counters"])
        self.remote: RayTransitionCollector | None = None
        if run.ray is not None:
            if config.env_groups > 1:
                raise ValueError(
                    "env_groups: Ray actors step their own envs, one chunk at a time; "
                    f"expected 1 with --ray, got {config.env_groups}"
                )
            probe = make_env(env_config)
            obs_space, action_space = probe.observation_space, probe.action_space
            probe.close()
        else:
            made = envs_fn(run.seed) if envs_fn else make_envs(env_config, config, run.seed)
            self.env_groups = [made] if isinstance(made, VectorEnv) else list(made)
            self.columns = group_columns(self.env_groups)
            if self.columns[-1].stop != config.num_envs:
                for group in self.env_groups:
                    group.close()
                raise ValueError(
                    f"envs: expected {config.num_envs} in all, got {self.columns[-1].stop}"
                )
            obs_space = self.env_groups[0].single_observation_space
            action_space = self.env_groups[0].single_action_space
        self.obs_shape = tuple(obs_space.shape)
        self.num_actions = int(action_space.n)

        self.learner = DQNLearner(self.obs_shape, self.num_actions, config, device)
        replay_kind = PrioritizedFrameReplay if config.prioritized else FrameReplay
        replay_options = {"alpha": config.priority_alpha} if config.prioritized else {}
        self.replay = replay_kind(
            config.replay_size,
            self.obs_shape,
            replay_stack(env_config),
            config.num_envs,
            obs_dtype=obs_space.dtype,
            device=device if config.replay_on_device else "cpu",
            seed=run.seed,
            **replay_options,
        )
        self.explore_rng = np.random.default_rng(run.seed)
        # Learning starts after `burn_in` agent steps of a fresh replay: from step 0, or from
        # the resume when the replay was not saved with the checkpoint.
        self.learn_start, self.updates_before = config.burn_in, 0
        if checkpoint is not None:
            self._resume(checkpoint)

        self.next_log = self.counters.frames + run.log_every
        self.losses: list[float] = []
        self.q_maxes: list[float] = []
        # With `learner_thread`: the update in flight, and the network the envs act with
        # (the online one as of the update before it).
        self.learner_pool = ThreadPoolExecutor(1) if config.learner_thread else None
        self.in_flight: tuple[Any, Future] | None = None
        self.acting_net = (
            copy.deepcopy(self.learner.online) if config.learner_thread else self.learner.online
        )
        if run.ray is not None:
            from mario_rl.agents.dqn_remote import RayTransitionCollector

            # The first chunk is asked for on the first step, after `init_weights`.
            self.remote = RayTransitionCollector(
                env_config, config, run.env_actors, run.seed, run.ray
            )
            return
        self.frame_counter = FrameCounter(config.num_envs)
        self.frame_counter.total = self.counters.frames
        observations = []
        for group, columns in zip(self.env_groups, self.columns, strict=True):
            obs, info = group.reset(seed=run.seed + self.counters.frames + columns.start)
            self.frame_counter.start(info, columns)
            observations.append(obs)
        self.obs = np.concatenate(observations)
        self.replay.start(np.arange(config.num_envs), self.obs)
        # The agent step the envs are taking: its actions and epsilon, and the exploration
        # RNG's state before they were drawn (a checkpoint's, as the step is not counted).
        self.in_flight_step: tuple[np.ndarray, float] | None = None
        self.explore_state = self.explore_rng.bit_generator.state
        self.steps = StepsInTurn()

    @staticmethod
    def identity(env_config: EnvConfig, config: DQNConfig) -> tuple[str, str, str]:
        return config.algo, env_config.actions, network_name(config.network, config.dueling)

    @property
    def frames(self) -> int:
        return self.counters.frames

    def _resume(self, checkpoint: dict[str, Any]) -> None:
        self.learner.load_state_dict(checkpoint)
        self.explore_rng.bit_generator.state = checkpoint["explore_rng"]
        run_dir = Path(checkpoint["path"]).parent.parent
        replay_file = replay_path(run_dir, self.counters.frames)
        if self.run.save_replay and replay_file.is_file():
            self.replay.load_state_dict(load_plain_data(replay_file))
            return
        if self.run.save_replay:
            print(
                f"{run_dir}: no replay saved at the checkpoint's {self.counters.frames:,} "
                "frames; refilling the replay from scratch (burn-in again)",
                file=sys.stderr,
            )
        self.learn_start = self.counters.steps + self.config.burn_in
        self.updates_before = self.counters.updates

    def _learn(self, steps_after: int, budget: Budget) -> None:
        """The updates owed once `steps_after` agent steps are taken, and the target syncs."""
        config, counters, learner = self.config, self.counters, self.learner
        if steps_after > self.learn_start:
            owed = (steps_after - self.learn_start) // config.learn_every
            due = owed - (counters.updates - self.updates_before)
            for _ in range(due):
                used = budget.schedule(counters.frames)
                if self.learner_pool is None:
                    loss, q_max = learner.update(self.replay, used)
                    self.losses.append(loss)
                    self.q_maxes.append(q_max)
                else:
                    self._finish_update()
                    batch = learner.sample(self.replay, used)
                    self.in_flight = (batch, self.learner_pool.submit(learner.learn, batch))
                counters.updates += 1
        if config.target_sync_every and steps_after // config.target_sync_every > counters.syncs:
            self._finish_update()
            learner.sync_target()
            counters.syncs = steps_after // config.target_sync_every

    def _finish_update(self) -> None:
        """Wait for the update in flight (if any), write its priorities back and let the
        envs act with its weights from now on."""
        if self.in_flight is None:
            return
        batch, future = self.in_flight
        self.in_flight = None
        loss, q_max, td_errors = future.result()
        self.learner.write_priorities(self.replay, batch, td_errors)
        self.losses.append(loss)
        self.q_maxes.append(q_max)
        self.acting_net.load_state_dict(self.learner.online.state_dict())

    def _log_scalars(self, epsilon: float) -> dict[str, float]:
        counters = self.counters
        if counters.frames < self.next_log:
            return {}
        scalars = {"charts/epsilon": epsilon, "charts/updates": counters.updates}
        if self.losses:
            scalars["losses/td"] = float(np.mean(self.losses))
            scalars["q/max"] = float(np.max(self.q_maxes))
        if self.remote is not None:
            scalars["charts/lost_chunks"] = self.remote.lost_chunks
            scalars["charts/actor_restarts"] = self.remote.restarts
        self.losses.clear()
        self.q_maxes.clear()
        self.next_log = counters.frames + self.run.log_every
        return scalars

    def _step_remote(self, budget: Budget) -> Step:
        """One chunk from every Ray actor: stored, and learned from while the actors
        collect the next one (`dqn_remote`)."""
        config, counters, remote = self.config, self.counters, self.remote
        epsilon = epsilon_at(counters.steps, config)
        if not remote.pending:
            remote.submit(self.acting_net.state_dict(), epsilon, counters.frames)
        chunks = remote.receive()
        # The update in flight sampled slots this chunk's adds may reuse: its priorities go
        # back first (it ran while the actors collected, so this rarely waits).
        self._finish_update()
        chunk_steps = chunks[0]["actions"].shape[0]
        steps_after = counters.steps + chunk_steps * config.num_envs
        frames_after = counters.frames + sum(chunk["frames"] for chunk in chunks)
        last = budget.spent(frames_after)
        if not last:
            remote.submit(
                self.acting_net.state_dict(), epsilon_at(steps_after, config), frames_after
            )
        width = remote.per_actor
        for index, chunk in enumerate(chunks):
            if chunk["first_obs"] is not None:
                columns = np.arange(index * width, (index + 1) * width)
                # A copy: arrays from Ray's object store are read-only.
                self.replay.start(columns, np.array(chunk["first_obs"]))
        joined = {
            name: np.concatenate([chunk[name] for chunk in chunks], axis=1)
            for name in ("actions", "rewards", "terminated", "truncated", "next_obs")
        }
        final_obs = {
            (t, index * width + i): obs
            for index, chunk in enumerate(chunks)
            for (t, i), obs in chunk["final_obs"].items()
        }
        for t in range(chunk_steps):
            next_obs = joined["next_obs"][t]
            terminated, truncated = joined["terminated"][t], joined["truncated"][t]
            ended = np.flatnonzero(terminated | truncated)
            stored_next = next_obs
            if len(ended):
                stored_next = next_obs.copy()
                for i in ended:
                    stored_next[i] = final_obs[(t, int(i))]
            rewards = joined["rewards"][t] * config.reward_scale
            self.replay.add(joined["actions"][t], rewards, stored_next, terminated, truncated)
            if len(ended):
                self.replay.start(ended, next_obs[ended])
        counters.frames = frames_after
        episodes = [(counters.frames, stats) for chunk in chunks for stats in chunk["episodes"]]
        self._learn(steps_after, budget)
        counters.steps = steps_after
        return Step(
            episodes, last=last, scalars=self._log_scalars(epsilon), postfix={"eps": epsilon}
        )

    def step(self, budget: Budget) -> Step:
        """One agent step of every env, pipelined: the updates it is due are made while the
        envs emulate it; then, group by group, its result is taken and the group sent on
        its next step, while the other groups still emulate; then it is stored.

        The order of what the networks, the replay and the RNGs see is that of an
        unpipelined loop (act, step, learn from the replay as it was, store), so a seed gives
        the same run for any number of groups. The next step is sent before this one is
        known to be the last: at the end, it is emulated and dropped, never counted.
        """
        if self.remote is not None:
            return self._step_remote(budget)
        config, counters = self.config, self.counters
        if self.in_flight_step is None:
            epsilon, actions, greedy = self._draw(counters.steps)
            self.in_flight_step = (self._choose(self.obs, actions, greedy), epsilon)
            for group, columns in zip(self.env_groups, self.columns, strict=True):
                self.steps.send(group, self.in_flight_step[0][columns])
        actions, epsilon = self.in_flight_step

        # Learn while the workers emulate: the updates this step's agent steps are due.
        steps_after = counters.steps + config.num_envs
        self._learn(steps_after, budget)

        # Take each group's result and send it on, so it emulates while the next group is
        # waited for. The next step's random draws are made up front for all envs, as an
        # unpipelined loop makes them.
        next_epsilon, random_actions, greedy = self._draw(steps_after)
        results = []
        for group, columns in zip(self.env_groups, self.columns, strict=True):
            result = self.steps.receive(group)
            results.append(result)
            random_actions[columns] = self._choose(
                result[0], random_actions[columns], greedy[columns]
            )
            self.steps.send(group, random_actions[columns])
        self.in_flight_step = (random_actions, next_epsilon)

        next_obs = np.concatenate([result[0] for result in results])
        rewards, terminated, truncated = (
            np.concatenate([result[k] for result in results]) for k in (1, 2, 3)
        )
        counters.steps = steps_after
        ended_stats = []
        # Store: the true next observation is `final_obs` where an episode just ended.
        ended = np.flatnonzero(terminated | truncated)
        stored_next = next_obs.copy() if len(ended) else next_obs
        for (_, _, group_terminated, group_truncated, info), columns in zip(
            results, self.columns, strict=True
        ):
            counters.frames += self.frame_counter.update(info, columns)
            for i in np.flatnonzero(group_terminated | group_truncated):
                stored_next[columns.start + i] = info["final_obs"][i]
            ended_stats += finished_episodes(info)
        # Each episode logged at the run's frames after the whole step, however grouped.
        episodes = [(counters.frames, stats) for stats in ended_stats]
        self.replay.add(actions, rewards * config.reward_scale, stored_next, terminated, truncated)
        if len(ended):
            self.replay.start(ended, next_obs[ended])
        self.obs = next_obs

        return Step(
            episodes,
            last=self.done(budget),
            scalars=self._log_scalars(epsilon),
            postfix={"eps": epsilon},
        )

    def _draw(self, steps: int) -> tuple[float, np.ndarray, np.ndarray]:
        """The exploration draws of agent step `steps` for every env: epsilon, a random
        action each, and which envs act greedily instead. Keeps the RNG's state before
        them for a checkpoint, which counts the steps before this one only."""
        epsilon = epsilon_at(steps, self.config)
        self.explore_state = self.explore_rng.bit_generator.state
        actions = self.explore_rng.integers(0, self.num_actions, self.config.num_envs)
        greedy = self.explore_rng.random(self.config.num_envs) >= epsilon
        return epsilon, actions, greedy

    def _choose(self, obs: np.ndarray, actions: np.ndarray, greedy: np.ndarray) -> np.ndarray:
        """`actions` with the greedy envs' replaced by the acting network's choice."""
        if greedy.any():
            with torch.no_grad():
                q_now = self.acting_net(torch.as_tensor(obs[greedy], device=self.device))
            actions[greedy] = q_now.argmax(dim=1).cpu().numpy()
        return actions

    def init_weights(self, checkpoint: dict[str, Any]) -> None:
        """Start from `checkpoint`'s online network (the target starts as its copy); the
        optimiser, replay, counters and epsilon schedule start fresh."""
        self.learner.online.load_state_dict(checkpoint["model_state"])
        self.learner.sync_target()
        if self.acting_net is not self.learner.online:
            self.acting_net.load_state_dict(self.learner.online.state_dict())

    def checkpoint(self, run_dir: RunDir) -> dict[str, Any]:
        self._finish_update()  # the networks and priorities of every update counted
        if self.run.save_replay:
            # Replay first, checkpoint second, then the older replays go: a kill at any point
            # leaves the newest checkpoint with the replay of the same frame count.
            atomic_save(self.replay.state_dict(), replay_path(run_dir.path, self.frames))
        return {
            "algo": self.algo,
            "module": __name__,
            "action_set": self.env_config.actions,
            "network": self.network,
            "env_config": self.env_config.to_dict(),
            "agent_config": asdict(self.config),
            "num_actions": self.num_actions,
            "obs_shape": self.obs_shape,
            **self.learner.state_dict(),
            "counters": asdict(self.counters),
            # The RNG as the counted steps left it: the step in flight is not counted.
            "explore_rng": self.explore_state
            if self.remote is None
            else self.explore_rng.bit_generator.state,
        }

    def start(self, run_dir: RunDir, logger: MetricsLogger) -> None:
        pass

    def done(self, budget: Budget) -> bool:
        return budget.spent(self.counters.frames)

    def after_checkpoint(self, run_dir: RunDir) -> None:
        if self.run.save_replay:
            saved = replay_path(run_dir.path, self.frames)
            for older in run_dir.path.glob("replay_*.pt"):
                if older != saved:
                    older.unlink(missing_ok=True)

    def close(self) -> None:
        try:
            if self.learner_pool is not None:
                try:
                    self._finish_update()
                finally:
                    self.learner_pool.shutdown(wait=True)
        finally:
            if self.remote is not None:
                self.remote.close()
            else:
                # The step sent ahead of the last one counted is never taken.
                for group in self.env_groups:
                    try:
                        drop_pending_step(group)
                    finally:
                        group.close()
            torch.set_num_threads(self.threads_before)
