"""The shared torsos' activation: `ExpELU` is `nn.ELU` computed from `exp`."""

import torch
from torch import nn

from mario_rl.nets import ExpELU, build_torso, on_device


def test_exp_elu_matches_nn_elu_in_value_and_gradient():
    torch.manual_seed(0)
    x = torch.cat([torch.randn(10_000) * 5, torch.tensor([0.0, -0.0, 1e-9, -1e-9, -80.0])])
    native_in, ours_in = x.clone().requires_grad_(), x.clone().requires_grad_()
    native_out, ours_out = nn.ELU()(native_in), ExpELU()(ours_in)
    weights = torch.randn_like(x)  # a gradient that differs per element
    (native_out * weights).sum().backward()
    (ours_out * weights).sum().backward()
    assert torch.allclose(ours_out, native_out, rtol=0, atol=1e-6)
    assert native_in.grad is not None and ours_in.grad is not None
    assert torch.allclose(ours_in.grad, native_in.grad, rtol=0, atol=1e-6)


def test_exp_elu_leaves_its_input_alone_and_keeps_channels_last():
    x = torch.randn(2, 32, 5, 5).contiguous(memory_format=torch.channels_last)
    before = x.clone()
    out = ExpELU()(x)
    assert torch.equal(x, before)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out > 0, x > 0) and out.min() > -1


def test_the_small_torso_uses_exp_elu_and_trains_as_before():
    torch.manual_seed(0)
    torso, _ = build_torso("small", (4, 42, 42))
    activations = [m for m in torso.modules() if isinstance(m, ExpELU | nn.ELU)]
    assert len(activations) == 4 and all(isinstance(m, ExpELU) for m in activations)
    # The same weights with nn.ELU: outputs and gradients agree to float rounding.
    native, _ = build_torso("small", (4, 42, 42))
    native.load_state_dict(torso.state_dict())
    for module in native.modules():
        for name, child in module.named_children():
            if isinstance(child, ExpELU):
                setattr(module, name, nn.ELU())
    torso, native = on_device(torso, "cpu"), on_device(native, "cpu")
    obs = torch.rand(8, 4, 42, 42)
    ours_out, native_out = torso(obs), native(obs)
    assert torch.allclose(ours_out, native_out, atol=1e-5)
    ours_out.square().mean().backward()
    native_out.square().mean().backward()
    for ours, theirs in zip(torso.parameters(), native.parameters(), strict=True):
        assert ours.grad is not None and theirs.grad is not None
        assert torch.allclose(ours.grad, theirs.grad, atol=1e-5, rtol=1e-4)
