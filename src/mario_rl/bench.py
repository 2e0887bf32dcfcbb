"""Environment throughput: raw emulator, the full pipeline in-process, and 1..N workers
(stepped in lock step, and stepped in turn as training steps its env groups)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mario_rl.env.core import MarioEnv
from mario_rl.env.pipeline import EnvConfig, make_env
from mario_rl.env.vector import FrameCounter, make_vector_env, make_vector_env_groups

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Throughput:
    setting: str
    workers: int
    """Worker processes; 0 when the env runs in this process."""
    frames: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


def alternating_ms(
    calls: dict[str, Callable[[], object]], rounds: int, repeats: int
) -> dict[str, float]:
    """Milliseconds per call of each of `calls`, timed in alternating rounds (`repeats`
    calls of each per round, after one warm-up call each), so drift in the machine's speed
    falls on all of them alike."""
    seconds = dict.fromkeys(calls, 0.0)
    for call in calls.values():
        call()  # warm-up: oneDNN, for one, picks its kernels on the first call
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(repeats):
                call()
            seconds[name] += time.perf_counter() - start
    return {name: total / (rounds * repeats) * 1e3 for name, total in seconds.items()}


def gradient_step(net: nn.Module, batch: int, shape: tuple[int, ...]) -> Callable[[], None]:
    """One Adam step of `net` on a fixed batch of random uint8 observations shaped
    `shape`, as a call for `alternating_ms`; the loss is the mean square of each output."""
    import torch  # here: `mario-rl bench env` never needs it

    from mario_rl.nets import adam  # training's own optimiser

    optimizer = adam(net.parameters(), 1e-4, 1e-8)
    obs = torch.randint(0, 256, (batch, *shape), dtype=torch.uint8)

    def step() -> None:
        output = net(obs)
        parts = output if isinstance(output, tuple) else (output,)
        loss = sum(part.float().pow(2).mean() for part in parts)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def raw_emulator_fps(level: str, frames: int, seed: int) -> Throughput:
    """`_frame_advance` alone with random buttons of the same action set: the ceiling."""
    env = MarioEnv(level, "right_only")
    env.reset(seed=seed)
    emulator = env.emulator
    buttons = np.asarray(env._action_bytes)[np.random.default_rng(seed).integers(0, 5, frames)]
    start = time.perf_counter()
    for button in buttons.tolist():
        emulator._frame_advance(button)
        if emulator._is_dying or emulator._is_dead:
            emulator.reset()
    seconds = time.perf_counter() - start
    env.close()
    return Throughput("raw emulator", 0, frames, seconds)


def pipeline_fps(config: EnvConfig, frames: int, seed: int) -> Throughput:
    """The full pipeline of `config` in this process, random actions."""
    env = make_env(config, seed=seed)
    done_frames = 0
    start = time.perf_counter()
    while done_frames + env.unwrapped.frames < frames:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        if terminated or truncated:
            done_frames += info["frames"]
            env.reset()
    total = done_frames + env.unwrapped.frames
    seconds = time.perf_counter() - start
    env.close()
    return Throughput("pipeline, in process", 0, total, seconds)


def vector_fps(config: EnvConfig, workers: int, frames: int, seed: int) -> Throughput:
    """`workers` worker processes; `frames` per worker, timed after start-up."""
    envs = make_vector_env(workers, config, seed=seed)
    try:
        _, info = envs.reset(seed=seed)
        counter = FrameCounter(workers)
        counter.start(info)
        counter.total = 0
        start = time.perf_counter()
        while counter.total < frames * workers:
            counter.update(envs.step(envs.action_space.sample())[4])
        seconds = time.perf_counter() - start
    finally:
        envs.close()
    label = "1 worker" if workers == 1 else f"{workers} workers"
    return Throughput(f"pipeline, {label}", workers, counter.total, seconds)


def vector_in_turn_fps(config: EnvConfig, workers: int, frames: int, seed: int) -> Throughput:
    """`workers` worker processes stepped in turn, as training steps its env groups: each
    worker gets its next action as soon as its own step is back, instead of all waiting
    for the slowest and for this process (`vector_fps`); `frames` per worker."""
    groups = make_vector_env_groups(workers, workers, config, seed=seed)
    try:
        counter = FrameCounter(workers)
        columns = [slice(index, index + 1) for index in range(workers)]
        for envs, column in zip(groups, columns, strict=True):
            counter.start(envs.reset(seed=seed + column.start)[1], column)
        counter.total = 0
        start = time.perf_counter()
        for envs in groups:
            envs.step_async(envs.action_space.sample())
        while counter.total < frames * workers:
            for envs, column in zip(groups, columns, strict=True):
                counter.update(envs.step_wait()[4], column)
                envs.step_async(envs.action_space.sample())
        seconds = time.perf_counter() - start
        for envs in groups:
            envs.step_wait()
    finally:
        for envs in groups:
            envs.close()
    return Throughput(f"pipeline, {workers} workers in turn", workers, counter.total, seconds)


def bench_env(
    config: EnvConfig,
    frames: int,
    max_workers: int | None = None,
    seed: int = 0,
    rounds: int = 3,
) -> list[Throughput]:
    """Every setting over about `frames` frames, in `rounds` interleaved rounds (raw, in
    process, 1..N workers, then again): a shared machine's speed drifts by 10-20% within a
    minute, and interleaving spreads the drift over all settings instead of one."""
    max_workers = max_workers or os.cpu_count() or 1
    per_round = max(1, frames // rounds)
    measured: list[list[Throughput]] = []
    for round_index in range(rounds):
        round_seed = seed + round_index
        measured.append(
            [
                raw_emulator_fps(config.level, per_round, round_seed),
                pipeline_fps(config, per_round, round_seed),
                *(vector_fps(config, n, per_round, round_seed) for n in range(1, max_workers + 1)),
                *(
                    vector_in_turn_fps(config, n, per_round, round_seed)
                    for n in range(2, max_workers + 1)
                ),
            ]
        )
    return [
        Throughput(
            setting[0].setting,
            setting[0].workers,
            sum(result.frames for result in setting),
            sum(result.seconds for result in setting),
        )
        for setting in zip(*measured, strict=True)
    ]
