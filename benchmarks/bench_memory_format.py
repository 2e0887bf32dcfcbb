"""Channels-last against contiguous weights: the training networks' gradient steps on the CPU.

    python benchmarks/bench_memory_format.py

Times, in one process with one torch thread (as training runs), a forward, backward and
Adam step of ppo-fast's actor-critic on minibatches of 256 and of dqn-fast's dueling
Q-network on batches of 32, each network once as `nn.Module.to` leaves it and once as
`mario_rl.nets.on_device` puts it on the CPU (conv weights channels-last). The two are
timed in alternating rounds, so the machine's drift falls on both alike; the ratio is
contiguous time / channels-last time (above 1: channels-last is faster).
"""

from __future__ import annotations

import argparse
import copy

import torch

from mario_rl.agents.ppo.networks import ActorCritic
from mario_rl.bench import alternating_ms, gradient_step
from mario_rl.nets import QNetwork, on_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="gradient steps per round")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cases = {
        "ppo-fast actor-critic, minibatch 256": (ActorCritic((4, 42, 42), 5, "small"), 256),
        "dqn-fast Q-network, batch 32": (QNetwork((4, 42, 42), 5, "small-relu", True), 32),
    }
    for name, (net, batch) in cases.items():
        steps = {
            "contiguous": gradient_step(net, batch, (4, 42, 42)),
            "channels-last": gradient_step(
                on_device(copy.deepcopy(net), "cpu"), batch, (4, 42, 42)
            ),
        }
        per_step = alternating_ms(steps, args.rounds, args.steps)
        print(
            f"{name}: contiguous {per_step['contiguous']:.1f} ms, channels-last "
            f"{per_step['channels-last']:.1f} ms a step; ratio "
            f"{per_step['contiguous'] / per_step['channels-last']:.2f}"
        )


if __name__ == "__main__":
    main()
