"""Learner throughput of every DQN preset on this machine: frames/s and updates/s.

Each preset trains on 1-1 for `--frames` emulator frames with its own settings except the
burn-in, cut to `--burn-in` agent steps so the run measures acting and learning together
(the steady state of a full run). Also measures the update alone (the loop's own
`DQNLearner.update`: sample, target, loss, gradient step; no emulation). Then times that
update alone for each torso under `dqn-fast`'s other settings (`--torsos`; the Nature CNN
on 84x84 frames, the small ones on 42x42), with each one's ratio to the first.
Run: `python benchmarks/bench_dqn.py --frames 6000`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch

from mario_rl.agents.dqn import DQNConfig, DQNLearner, torch_threads
from mario_rl.env.actions import action_set
from mario_rl.env.pipeline import EnvConfig
from mario_rl.presets import PRESETS
from mario_rl.replay import FrameReplay, PrioritizedFrameReplay
from mario_rl.runs import RunConfig, load_checkpoint
from mario_rl.training import train

TORSOS = ["nature", "small", "small-relu"]


def time_updates(env: EnvConfig, agent: DQNConfig, updates: int) -> float:
    """Updates per second of the training loop's own update (`DQNLearner.update`: sample,
    target, loss, step, priorities), on a replay of random frames shaped as the preset's
    observations, for its network, action set, target rule, loss and replay kind."""
    torch.set_num_threads(torch_threads(agent))
    obs_shape = (env.frame_stack, *env.resize)
    learner = DQNLearner(obs_shape, len(action_set(env.actions)), agent, torch.device("cpu"))
    replay_kind = PrioritizedFrameReplay if agent.prioritized else FrameReplay
    options = {"alpha": agent.priority_alpha} if agent.prioritized else {}
    replay = replay_kind(4096, obs_shape, env.frame_stack, seed=0, **options)
    rng = np.random.default_rng(0)
    replay.start(np.array([0]), rng.integers(0, 256, (1, *obs_shape), np.uint8))
    for _ in range(2000):
        obs = rng.integers(0, 256, (1, *obs_shape), np.uint8)
        replay.add(np.array([1]), np.array([1.0]), obs, np.array([False]), np.array([False]))
    start = time.perf_counter()
    for _ in range(updates):
        learner.update(replay, used=0.5)
    return updates / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6000, help="frames per preset run")
    parser.add_argument("--burn-in", type=int, default=200, help="agent steps before learning")
    parser.add_argument("--updates", type=int, default=30, help="updates timed alone")
    dqn_presets = [name for name, preset in PRESETS.items() if isinstance(preset.agent, DQNConfig)]
    parser.add_argument("--presets", nargs="*", choices=dqn_presets, default=dqn_presets)
    parser.add_argument("--torsos", nargs="*", choices=TORSOS, default=TORSOS)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, torch {torch.__version__}, load {os.getloadavg()[0]:.1f}")
    header = (
        f"{'preset':<14} {'actions':<10} {'learn every':>11} {'frames/s':>9} "
        f"{'updates/s':>9} {'update only/s':>13}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as runs:
        for name in args.presets:
            preset = PRESETS[name]
            agent = replace(preset.agent, burn_in=args.burn_in)
            run = RunConfig(frames=args.frames, runs_dir=runs, progress=False, device="cpu")
            start = time.perf_counter()
            run_dir = train(run, replace(preset.env, level="1-1"), agent, preset=name)
            seconds = time.perf_counter() - start
            counters = load_checkpoint(run_dir)["counters"]
            alone = time_updates(preset.env, agent, args.updates)
            print(
                f"{name:<14} {preset.env.actions:<10} {agent.learn_every:>11} "
                f"{counters['frames'] / seconds:>9.0f} {counters['updates'] / seconds:>9.1f} "
                f"{alone:>13.1f}"
            )

    fast = PRESETS["dqn-fast"]
    print(f"\nthe update alone, dqn-fast's settings, {torch_threads(fast.agent)} torch thread(s)")
    print(f"{'torso':<11} {'frames':<8} {'updates/s':>9} {'ratio':>6}")
    first = None
    for torso in args.torsos:
        env = replace(fast.env, resize=(84, 84) if torso == "nature" else (42, 42))
        rate = time_updates(env, replace(fast.agent, network=torso), args.updates)
        first = first or rate
        size = f"{env.resize[0]}x{env.resize[1]}"
        print(f"{torso:<11} {size:<8} {rate:>9.1f} {rate / first:>5.2f}x")


if __name__ == "__main__":
    main()
