"""`nn.ELU` against `mario_rl.nets.ExpELU`: the activation alone and the networks that use it.

    python benchmarks/bench_elu.py

In one process with one torch thread (as training runs), times:
- the activation on one (256, 32, 21, 21) tensor, the small torso's first activation on a
  PPO minibatch: forward, and forward with backward;
- a gradient step (forward, backward, Adam) of ppo-fast's actor-critic on a minibatch of
  256, on the CPU as training puts it (`mario_rl.nets.on_device`);
- the policy's forward on 4 observations without gradients, as the rollout acts on one
  group of envs.
Each case is timed in alternating rounds, `nn.ELU` then `ExpELU`, so the machine's drift
falls on both alike; the ratio is `nn.ELU`'s time / `ExpELU`'s (above 1: ExpELU is faster).
It also prints the largest difference between the two activations' values and gradients.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable

import torch
from torch import nn

from mario_rl.agents.ppo.networks import ActorCritic
from mario_rl.bench import alternating_ms, gradient_step
from mario_rl.nets import ExpELU, on_device


def with_activation(net: nn.Module, activation: type[nn.Module]) -> nn.Module:
    """A copy of `net` with every ELU (either kind) replaced by `activation()`."""
    net = copy.deepcopy(net)
    for module in net.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.ELU | ExpELU):
                setattr(module, name, activation())
    return net


def acting(net: nn.Module) -> Callable[[], None]:
    obs = torch.randint(0, 256, (4, 4, 42, 42), dtype=torch.uint8)

    def act() -> None:
        with torch.no_grad():
            net(obs)

    return act


def activation_cases() -> dict[str, dict[str, Callable[[], object]]]:
    x = torch.randn(256, 32, 21, 21)
    grad = torch.randn_like(x)

    def forward_backward(activation: nn.Module) -> Callable[[], None]:
        def run() -> None:
            leaf = x.clone().requires_grad_()
            activation(leaf).backward(grad)

        return run

    native, ours = nn.ELU(), ExpELU()
    return {
        "activation (256, 32, 21, 21), forward": {
            "nn.ELU": lambda: native(x),
            "ExpELU": lambda: ours(x),
        },
        "activation (256, 32, 21, 21), forward + backward": {
            "nn.ELU": forward_backward(native),
            "ExpELU": forward_backward(ours),
        },
    }


def network_cases() -> dict[str, dict[str, Callable[[], object]]]:
    net = on_device(ActorCritic((4, 42, 42), 5, "small"), "cpu")
    native, ours = with_activation(net, nn.ELU), with_activation(net, ExpELU)
    return {
        "ppo-fast actor-critic, gradient step on 256": {
            "nn.ELU": gradient_step(native, 256, (4, 42, 42)),
            "ExpELU": gradient_step(ours, 256, (4, 42, 42)),
        },
        "ppo-fast actor-critic, acting on 4": {"nn.ELU": acting(native), "ExpELU": acting(ours)},
    }


def largest_differences() -> tuple[float, float]:
    """Largest |value| and |gradient| difference on 1e6 values drawn from N(0, 5^2)."""
    x = torch.randn(1_000_000) * 5
    native_in, ours_in = x.clone().requires_grad_(), x.clone().requires_grad_()
    native_out, ours_out = nn.ELU()(native_in), ExpELU()(ours_in)
    native_out.sum().backward()
    ours_out.sum().backward()
    assert native_in.grad is not None and ours_in.grad is not None
    return (
        (native_out - ours_out).abs().max().item(),
        (native_in.grad - ours_in.grad).abs().max().item(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10, help="calls per case per round")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for name, runs in {**activation_cases(), **network_cases()}.items():
        per_call = alternating_ms(runs, args.rounds, args.repeats)
        print(
            f"{name}: nn.ELU {per_call['nn.ELU']:.2f} ms, ExpELU {per_call['ExpELU']:.2f} ms; "
            f"ratio {per_call['nn.ELU'] / per_call['ExpELU']:.2f}"
        )
    value, gradient = largest_differences()
    print(f"largest difference on 1e6 values: value {value:.1e}, gradient {gradient:.1e}")


if __name__ == "__main__":
    main()
