"""The DQN update with PyTorch's default Adam and out-of-place ReLUs, against what the
learners use since 2026-12-05: fused Adam (`mario_rl.nets.adam`) and in-place ReLUs.

    python benchmarks/bench_dqn_kernels.py --rounds 9 --repeats 25

For each torso (the write-ups' Nature CNN on 84x84, dqn-fast's small-relu on 42x42), one
`DQNLearner.learn` of dqn-fast's settings (batch 32, Double DQN, dueling head) on one
fixed batch, one torch thread, in four variants timed in alternating rounds so the
machine's drift falls on all alike. Prints each variant's milliseconds per update and its
speed-up over the first (default Adam, out-of-place ReLU).
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from mario_rl.agents.dqn import DQNLearner
from mario_rl.bench import alternating_ms
from mario_rl.presets import get_preset
from mario_rl.replay import FrameReplay

TORSOS = {"nature": (4, 84, 84), "small-relu": (4, 42, 42)}


def learner(network: str, fused: bool, in_place: bool) -> DQNLearner:
    """dqn-fast's learner on `network`, its Adam fused or not, its ReLUs in place or not."""
    config = replace(get_preset("dqn-fast").agent, network=network)
    torch.manual_seed(0)
    built = DQNLearner(TORSOS[network], 5, config, torch.device("cpu"))
    for net in (built.online, built.target):
        for module in net.modules():
            if isinstance(module, nn.ReLU):
                module.inplace = in_place
    built.optimizer = torch.optim.Adam(
        built.online.parameters(), lr=config.learning_rate, eps=config.adam_eps, fused=fused
    )
    return built


def batch(network: str, config_batch: int = 32) -> object:
    """A batch as the replay gives it, from random frames."""
    shape = TORSOS[network]
    rng = np.random.default_rng(0)
    replay = FrameReplay(1_000, shape, shape[0], num_envs=1, seed=0)
    replay.start(np.arange(1), rng.integers(0, 256, (1, *shape), dtype=np.uint8))
    for _ in range(200):
        frames = rng.integers(0, 256, (1, *shape), dtype=np.uint8)
        replay.add(rng.integers(0, 5, 1), rng.random(1, dtype=np.float32), frames,
                   np.zeros(1, bool), np.zeros(1, bool))  # fmt: skip
    return replay.sample(config_batch, 3, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for network in TORSOS:
        sample = batch(network)
        variants = {
            f"{adam} Adam, {relu} ReLU": learner(network, fused, in_place)
            for fused, adam in ((False, "default"), (True, "fused"))
            for in_place, relu in ((False, "out-of-place"), (True, "in-place"))
        }
        times = alternating_ms(
            {name: functools.partial(chosen.learn, sample) for name, chosen in variants.items()},
            args.rounds,
            args.repeats,
        )
        first = next(iter(times.values()))
        for name, ms in times.items():
            print(f"{network:>10}  {name:<30} {ms:6.2f} ms per update  {first / ms:4.2f}x")


if __name__ == "__main__":
    main()
