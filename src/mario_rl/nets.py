"""Network torsos and the Q-network head every value-based agent shares.

`nature_cnn` is the DQN paper's torso (Mnih et al. 2015, "Methods: model architecture"):
32 filters 8x8 stride 4, 64 filters 4x4 stride 2, 64 filters 3x3 stride 1, then a fully
connected layer of 512, ReLU after each. `small_cnn` is the ICM paper's torso for 42x42
inputs (Pathak et al. 2017, section 4; universe-starter-agent), with `ExpELU` as its ELU;
`small-relu` is the same with ReLU in place of ELU, which is cheaper still (measured in
`benchmarks/bench_dqn.py`). `mlp` is a small torso for
vector observations (tests and toy problems). Networks take uint8 pixels as they come from
the replay and scale them by 1/255 inside `forward`, so observations travel as bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

NETWORKS = ("nature", "small", "small-relu", "mlp")
"""Torso names `QNetwork` accepts."""
HIDDEN = 512
"""Width of the Nature CNN's fully connected layer."""
MLP_HIDDEN = 64
"""Width of each hidden layer of the `mlp` torso."""


def on_device[M: nn.Module](module: M, device: torch.device | str) -> M:
    """`module` moved to `device`; on the CPU with its conv weights channels-last, which
    oneDNN's convolutions, the backward pass above all, run about 1.4x faster on these
    small torsos (README, "Throughput"). The same maths: outputs differ only by float
    rounding, and checkpoints load either way."""
    module = module.to(device)
    if torch.device(device).type == "cpu":
        module = module.to(memory_format=torch.channels_last)
    return module


class _ExpELUFunction(torch.autograd.Function):
    """ELU (alpha 1) from `exp`, its gradient from the output by `nn.ELU`'s own backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        # max(x, exp(min(x, 0)) - 1): x above 0, and below it exp(x) - 1 >= x. In place
        # after the first pass: the activation's cost is its passes over memory.
        out = x.clamp(max=0)
        torch.exp(out, out=out).sub_(1)
        torch.maximum(out, x, out=out)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (out,) = ctx.saved_tensors
        return torch.ops.aten.elu_backward(grad, 1.0, 1.0, 1.0, True, out)


class ExpELU(nn.Module):
    """`nn.ELU()` that computes exp(x) - 1 where `nn.ELU` computes expm1(x).

    PyTorch's CPU kernel for `expm1` (which `nn.ELU` uses) is scalar, `exp`'s is
    vectorised: on a (256, 32, 21, 21) activation of the small torso, one torch thread,
    `nn.ELU`'s forward took 34.9 ms and this one 3.3 ms (best calls of two throwaway
    timings; `python benchmarks/bench_elu.py` times both, alone and in the network). It
    was about 40% of the PPO trainer's process time. The values differ from `nn.ELU`'s by
    float rounding (exp(x) - 1 loses relative precision only where |x| is tiny, a few 1e-8
    absolute); the gradient is `nn.ELU`'s own backward, from the output. No parameters:
    checkpoints of either load in the other.
    Off the CPU it is `nn.ELU`, whose fused kernel is fast there.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return nn.functional.elu(x)
        return _ExpELUFunction.apply(x)


def relu() -> nn.ReLU:
    """ReLU writing over its input: every ReLU here follows a layer whose output nothing
    else reads, and in place it skips allocating and filling a second activation (1.07x on
    dqn-fast's update with the small torso, 1.00x with the Nature CNN: docs/throughput.md,
    "Fused Adam and in-place ReLUs")."""
    return nn.ReLU(inplace=True)


def adam(parameters: Any, lr: float, eps: float) -> torch.optim.Adam:
    """Adam with PyTorch's fused kernel, on the CPU as on CUDA: one kernel per parameter
    where the default runs a dozen small ops each, which on these small networks cost
    about a tenth of a DQN update. The same update rule; the values differ by float
    rounding. `load_optimizer_state` keeps it fused when resuming an older checkpoint."""
    return torch.optim.Adam(parameters, lr=lr, eps=eps, fused=True)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """`optimizer.load_state_dict(state)`, keeping an `adam` fused: a checkpoint saved
    before it was (fused None) would otherwise switch it back to the slower kernels.

    Each per-parameter state tensor also takes its parameter's memory layout. The fused
    kernel walks parameter and state as raw memory, while `load_state_dict` keeps the
    saved layout, which differs where the parameter's does (`on_device` makes conv
    weights channels-last on the CPU only): a run resumed on the other device, or from a
    checkpoint older than channels-last, would apply its moments to the wrong elements.
    """
    optimizer.load_state_dict(state)
    for group in optimizer.param_groups:
        if "fused" in group:
            group["fused"] = True
            group["foreach"] = None
        for parameter in group["params"]:
            moments = optimizer.state.get(parameter, {})
            for name, value in moments.items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.shape == parameter.shape
                    and value.stride() != parameter.stride()
                ):
                    moments[name] = torch.empty_like(parameter).copy_(value)


def as_float(obs: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 in [0, 1]; float inputs unchanged."""
    if obs.dtype == torch.uint8:
        return obs.float() * (1.0 / 255.0)
    return obs.float()


def nature_cnn(in_channels: int, height: int = 84, width: int = 84) -> tuple[nn.Module, int]:
    """The Nature DQN torso for (in_channels, height, width) inputs; returns (torso, out size)."""
    convs = nn.Sequential(
        nn.Conv2d(in_channels, 32, kernel_size=8, stride=4),
        relu(),
        nn.Conv2d(32, 64, kernel_size=4, stride=2),
        relu(),
        nn.Conv2d(64, 64, kernel_size=3, stride=1),
        relu(),
        nn.Flatten(),
    )
    with torch.no_grad():
        flat = convs(torch.zeros(1, in_channels, height, width)).shape[1]
    return nn.Sequential(convs, nn.Linear(flat, HIDDEN), relu()), HIDDEN


def small_cnn(
    in_channels: int,
    height: int = 42,
    width: int = 42,
    activation: Callable[[], nn.Module] = ExpELU,
) -> tuple[nn.Module, int]:
    """4 x (conv 32 3x3 stride 2, `activation`), then a fully connected layer of 512 and ReLU.

    On 42x42 it needs about a quarter of the Nature CNN's multiply-adds on 84x84.
    Returns (torso, out size), like `nature_cnn`.
    """
    layers: list[nn.Module] = []
    for index in range(4):
        layers += [nn.Conv2d(in_channels if index == 0 else 32, 32, 3, stride=2, padding=1)]
        layers += [activation()]
    convs = nn.Sequential(*layers, nn.Flatten())
    with torch.no_grad():
        flat = convs(torch.zeros(1, in_channels, height, width)).shape[1]
    return nn.Sequential(convs, nn.Linear(flat, HIDDEN), relu()), HIDDEN


def mlp(in_features: int) -> tuple[nn.Module, int]:
    """Two hidden layers of `MLP_HIDDEN` units for flat observations; returns (torso, out size)."""
    torso = nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, MLP_HIDDEN),
        relu(),
        nn.Linear(MLP_HIDDEN, MLP_HIDDEN),
        relu(),
    )
    return torso, MLP_HIDDEN


def build_torso(network: str, obs_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    """The torso named `network` for observations shaped `obs_shape` (no batch axis)."""
    if network in ("nature", "small", "small-relu"):
        if len(obs_shape) == 2:
            obs_shape = (1, *obs_shape)
        if len(obs_shape) != 3:
            raise ValueError(
                f"network {network!r}: expected observations shaped (C, H, W) or (H, W), "
                f"got {obs_shape}; use network 'mlp' for flat observations"
            )
        if network == "nature":
            return nature_cnn(*obs_shape)
        return small_cnn(*obs_shape, activation=ExpELU if network == "small" else relu)
    if network == "mlp":
        return mlp(math.prod(obs_shape))
    raise ValueError(f"network: expected one of {', '.join(NETWORKS)}, got {network!r}")


class QNetwork(nn.Module):
    """Q(s, .) for every action: a torso, then a linear head or a dueling head.

    The dueling head (Wang et al. 2016, eq. 9) splits the torso's features into a state
    value V(s) and advantages A(s, a), and recombines them as V + A - mean_a A.
    """

    def __init__(
        self, obs_shape: tuple[int, ...], num_actions: int, network: str, dueling: bool
    ) -> None:
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        self.needs_channel = network != "mlp" and len(obs_shape) == 2
        self.torso, features = build_torso(network, self.obs_shape)
        self.dueling = dueling
        # Named for the dueling head; without it this layer gives Q itself. The name stays:
        # it is the key of this layer in every saved checkpoint.
        self.advantage = nn.Linear(features, num_actions)
        self.value = nn.Linear(features, 1) if dueling else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = as_float(obs)
        if self.needs_channel:
            x = x.unsqueeze(1)
        features = self.torso(x)
        advantage = self.advantage(features)
        if self.value is None:
            return advantage
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)


def network_name(network: str, dueling: bool) -> str:
    """The name a checkpoint records for a Q-network, e.g. `nature` or `nature+dueling`."""
    return f"{network}+dueling" if dueling else network
