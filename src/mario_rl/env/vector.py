"""`make_vector_env`: n Mario pipelines in n worker processes, observations in shared memory.

Each worker runs the whole pipeline (skip, pool, resize, crop, stack) and writes only the
final 84x84 uint8 stack into shared memory, so the parent never copies full 240x256x3
frames between processes (doing so halves throughput; docs/architecture.md, section 2).

Autoreset is Gymnasium's SAME_STEP mode: when env i's episode ends, the observation
returned for it is already the first of the next episode, and `info["final_obs"][i]` /
`info["final_info"][i]` hold the last observation and info of the finished one (masked by
`info["_final_obs"]`). Learners bootstrap truncated episodes from `final_obs`.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode
from gymnasium.vector.async_vector_env import AsyncState

from mario_rl.env.pipeline import EnvConfig, make_env, measure_obs_stats
from mario_rl.env.wrappers import ObservationStats


class WorkerDiedError(RuntimeError):
    """A worker process of a vector env exited while the parent was waiting on it."""


WORKER_TIMEOUT_S = 120.0
"""Seconds a worker may take to answer one step or reset before it counts as frozen (a
step takes milliseconds; a stopped or deadlocked worker would otherwise block forever)."""


class MarioVectorEnv(AsyncVectorEnv):
    """`AsyncVectorEnv` that turns a dead or frozen worker into a `WorkerDiedError`, never a
    hang or a bare `EOFError`, on every path: `step`/`reset` and the overlapped
    `step_async`/`step_wait` alike."""

    worker_timeout: float | None = WORKER_TIMEOUT_S

    def step_async(self, actions: Any) -> None:
        self._guard("step", super().step_async, actions)

    def step_wait(self, timeout: float | None = None) -> Any:
        return self._guard("step", super().step_wait, timeout or self.worker_timeout)

    def reset_async(self, *args: Any, **kwargs: Any) -> None:
        self._guard("reset", super().reset_async, *args, **kwargs)

    def reset_wait(self, timeout: float | None = None) -> Any:
        return self._guard("reset", super().reset_wait, timeout or self.worker_timeout)

    def _shut_down(self) -> None:
        # Not waiting any more: `close` would otherwise wait on the dead worker again.
        self._state = AsyncState.DEFAULT
        # SIGKILL, not close's SIGTERM: a stopped (SIGSTOP) worker never acts on SIGTERM, and
        # joining it would hang.
        for process in self.processes:
            if process.is_alive():
                process.kill()
        self.close(terminate=True)

    def _guard(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except multiprocessing.TimeoutError as error:
            self._shut_down()
            raise WorkerDiedError(
                f"a worker did not answer a {what} within {self.worker_timeout:g} s (stopped, "
                "deadlocked or starved of CPU); all workers were shut down"
            ) from error
        except (EOFError, BrokenPipeError, ConnectionResetError) as error:
            dead = [
                f"worker {index} (pid {process.pid}, exit code {process.exitcode})"
                for index, process in enumerate(self.processes)
                if not process.is_alive()
            ]
            self._shut_down()
            raise WorkerDiedError(
                f"{', '.join(dead) or 'a worker'} died during {what}; "
                "all workers were shut down. Check memory (`free -h`) and the worker's stderr."
            ) from error


def drop_pending_step(envs: gym.vector.VectorEnv) -> None:
    """Wait for a step (or reset) that `envs` was sent (`step_async`, `reset_async`) and
    drop its result, so its workers are idle when it closes or is reset again (either
    warns or raises mid-call). The result is never used, so an error it raised is dropped
    with it; a worker that died is left to `close`."""
    if not isinstance(envs, AsyncVectorEnv):
        return
    with contextlib.suppress(Exception):
        if envs._state is AsyncState.WAITING_STEP:
            envs.step_wait()
        elif envs._state is AsyncState.WAITING_RESET:
            envs.reset_wait()


def make_vector_env(
    num_envs: int,
    config: EnvConfig,
    seed: int | None = None,
    context: str = "forkserver",
    obs_stats: ObservationStats | None = None,
    wrapper: Callable[[gym.Env], gym.Env] | None = None,
) -> MarioVectorEnv:
    """n pipelines built from `config`; env i is seeded with `seed + i`, as `make_env` would be.

    So `make_vector_env(n, c, s)` steps through the same trajectories as the n envs
    `make_env(c, s + i)` given the same actions. With `config.normalize_moves > 0` all
    workers share one set of `obs_stats`, measured here once if not given. `wrapper`
    (picklable, e.g. a `functools.partial` of a wrapper class) goes around each worker's
    pipeline: training-only additions that `EnvConfig`, and so evaluation, never sees.
    """
    if not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs: expected a positive integer, got {num_envs!r}")
    if context not in multiprocessing.get_all_start_methods():
        raise ValueError(
            f"context: expected one of {multiprocessing.get_all_start_methods()}, got {context!r}"
        )
    if config.normalize_moves > 0 and obs_stats is None:
        obs_stats = measure_obs_stats(config, seed)
    env_fns = [functools.partial(_worker_env, config, obs_stats, wrapper) for _ in range(num_envs)]
    try:
        envs = MarioVectorEnv(
            env_fns,
            shared_memory=True,
            context=context,
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
    except (EOFError, BrokenPipeError, ConnectionResetError):
        raise WorkerDiedError(_start_failure_advice()) from None
    envs.action_space.seed(seed)
    if seed is not None:
        envs.reset(seed=seed)
    return envs


def make_local_vector_env(
    num_envs: int,
    config: EnvConfig,
    seed: int | None = None,
    obs_stats: ObservationStats | None = None,
    wrapper: Callable[[gym.Env], gym.Env] | None = None,
) -> gym.vector.SyncVectorEnv:
    """`make_vector_env`'s n pipelines stepped one after another in this process (same
    seeds, SAME_STEP autoreset and `wrapper`): for a process that is itself one of many
    workers, such as a Ray actor, where more processes would only fight over its core."""
    if not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs: expected a positive integer, got {num_envs!r}")
    if config.normalize_moves > 0 and obs_stats is None:
        obs_stats = measure_obs_stats(config, seed)
    env_fns = [functools.partial(_worker_env, config, obs_stats, wrapper) for _ in range(num_envs)]
    envs = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)
    envs.action_space.seed(seed)
    if seed is not None:
        envs.reset(seed=seed)
    return envs


def check_env_groups(num_envs: int, groups: object, name: str = "env_groups") -> None:
    """A clear error unless `groups` is a positive divisor of `num_envs`."""
    if not isinstance(groups, int) or groups < 1 or num_envs % groups:
        raise ValueError(f"{name}: expected a divisor of num_envs={num_envs}, got {groups!r}")


def group_columns(groups: Sequence[gym.vector.VectorEnv]) -> list[slice]:
    """Where each of `groups` sits among all their envs, counted across the groups in order:
    the columns of the arrays a caller keeps for all of them."""
    edges = np.cumsum([0, *(group.num_envs for group in groups)]).tolist()
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


class StepsInTurn:
    """Starts and takes the steps of vector envs stepped in turn: one with worker processes
    emulates between `send` and `receive` while the caller works; one without workers
    steps at `send`, here and now, and `receive` hands that step over."""

    def __init__(self) -> None:
        self._stepped: dict[int, tuple] = {}

    def send(self, group: gym.vector.VectorEnv, actions: np.ndarray) -> None:
        if isinstance(group, AsyncVectorEnv):
            group.step_async(actions)
        else:
            self._stepped[id(group)] = group.step(actions)

    def receive(self, group: gym.vector.VectorEnv) -> tuple:
        """`group`'s step: (obs, rewards, terminated, truncated, info)."""
        if isinstance(group, AsyncVectorEnv):
            return group.step_wait()
        return self._stepped.pop(id(group))


def make_vector_env_groups(
    num_envs: int,
    groups: int,
    config: EnvConfig,
    seed: int | None = None,
    obs_stats: ObservationStats | None = None,
    wrapper: Callable[[gym.Env], gym.Env] | None = None,
) -> list[MarioVectorEnv]:
    """`num_envs` pipelines as `groups` vector envs of equal size, for stepping in turn:
    while one group's workers emulate, the caller acts on another group's observations,
    so neither the cores nor the caller wait on the other (`RolloutCollector`).

    Env i, counted across the groups in order, is seeded with `seed + i` as in
    `make_vector_env(num_envs, ...)`, and `FrameCounter` columns follow the same order.
    """
    check_env_groups(num_envs, groups, "groups")
    if config.normalize_moves > 0 and obs_stats is None:
        obs_stats = measure_obs_stats(config, seed)
    size = num_envs // groups
    made: list[MarioVectorEnv] = []
    try:
        for group in range(groups):
            group_seed = None if seed is None else seed + group * size
            made.append(
                make_vector_env(size, config, group_seed, obs_stats=obs_stats, wrapper=wrapper)
            )
    except BaseException:
        for envs in made:
            envs.close()
        raise
    return made


def _start_failure_advice() -> str:
    """Why workers die while starting, as far as the parent can tell (their own errors went
    to stderr, above): most often a script that starts them outside a `__main__` guard."""
    script = getattr(sys.modules["__main__"], "__file__", None)
    guard = (
        f"if {script} started this, the code that makes the vector env must sit under "
        '`if __name__ == "__main__":`, because each worker imports that script first and '
        "would start workers of its own; otherwise "
        if script
        else ""
    )
    return (
        "a worker died while starting (its own error is printed above); "
        f"{guard}run the same config with `make_env` in this process to see the error"
    )


def ignore_interrupts_in_workers() -> None:
    """In a worker process, ignore SIGINT. Ctrl-C reaches the whole process group; the
    parent alone handles it and closes the workers, which would otherwise die first and
    leave it broken pipes to close. (The parent builds one env too, to read the spaces: it
    keeps its handler.)"""
    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_env(
    config: EnvConfig,
    obs_stats: ObservationStats | None,
    wrapper: Callable[[gym.Env], gym.Env] | None,
) -> gym.Env:
    ignore_interrupts_in_workers()
    env = make_env(config, obs_stats=obs_stats)
    return wrapper(env) if wrapper is not None else env


class FrameCounter:
    """Counts emulator frames across a vector env's steps, autoresets included.

    Budgets are in emulator frames, not agent steps: an action span, a death inside it, or
    no-op starts all change how many frames a step costs.
    """

    def __init__(self, num_envs: int) -> None:
        self._frames_in_episode = np.zeros(num_envs, np.int64)
        self.total = 0

    def start(self, info: dict[str, Any], envs: slice = slice(None)) -> None:
        """Take the frames the first reset already spent (no-op starts); `envs`: the columns
        `info` is of, when the envs are stepped in groups (`make_vector_env_groups`)."""
        first = np.asarray(info["frames"], np.int64)
        self._frames_in_episode[envs] = first
        self.total += int(first.sum())

    def update(self, info: dict[str, Any], envs: slice = slice(None)) -> int:
        """Add one vector step's frames (of the columns `envs`) to `total`; return them."""
        frames_now = np.asarray(info["frames"], np.int64)
        before = self._frames_in_episode[envs]
        spent = frames_now - before
        if "_final_info" in info:
            ended = info["_final_info"]
            final_frames = np.asarray(info["final_info"]["frames"], np.int64)
            spent = np.where(ended, final_frames - before + frames_now, spent)
        self._frames_in_episode[envs] = frames_now
        step_frames = int(spent.sum())
        self.total += step_frames
        return step_frames
