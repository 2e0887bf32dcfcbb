"""The shared torsos' activations (`ExpELU` is `nn.ELU` computed from `exp`; ReLUs work in
place) and the optimiser every learner uses (`adam`, fused)."""

import copy

import pytest
import torch
from torch import nn

from mario_rl.nets import ExpELU, QNetwork, adam, build_torso, load_optimizer_state, on_device


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


@pytest.mark.parametrize("network", ["nature", "small-relu"])
def test_in_place_relus_give_the_same_q_values_and_gradients(network):
    torch.manual_seed(0)
    shape = (4, 84, 84) if network == "nature" else (4, 42, 42)
    ours = on_device(QNetwork(shape, 5, network, dueling=True), "cpu")
    relus = [m for m in ours.modules() if isinstance(m, nn.ReLU)]
    assert relus and all(m.inplace for m in relus)
    copy = on_device(QNetwork(shape, 5, network, dueling=True), "cpu")
    copy.load_state_dict(ours.state_dict())
    for module in copy.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.ReLU):
                setattr(module, name, nn.ReLU())
    obs = torch.randint(0, 256, (8, *shape), dtype=torch.uint8)
    ours_q, copy_q = ours(obs), copy(obs)
    assert torch.equal(ours_q, copy_q)
    ours_q.square().mean().backward()
    copy_q.square().mean().backward()
    for mine, theirs in zip(ours.parameters(), copy.parameters(), strict=True):
        assert mine.grad is not None and torch.equal(mine.grad, theirs.grad)


def _adam_steps(optimizer, net, batches):
    for batch in batches:
        optimizer.zero_grad()
        net(batch).square().mean().backward()
        optimizer.step()


def test_adam_is_fused_and_steps_as_the_default_adam():
    torch.manual_seed(0)
    fused_net = QNetwork((4, 42, 42), 5, "small-relu", dueling=True)
    plain_net = QNetwork((4, 42, 42), 5, "small-relu", dueling=True)
    plain_net.load_state_dict(fused_net.state_dict())
    fused = adam(fused_net.parameters(), 1e-3, 1e-8)
    plain = torch.optim.Adam(plain_net.parameters(), lr=1e-3, eps=1e-8)
    assert fused.param_groups[0]["fused"] and not plain.param_groups[0]["fused"]
    batches = [torch.randint(0, 256, (8, 4, 42, 42), dtype=torch.uint8) for _ in range(5)]
    _adam_steps(fused, fused_net, batches)
    _adam_steps(plain, plain_net, batches)
    for mine, theirs in zip(fused_net.parameters(), plain_net.parameters(), strict=True):
        assert torch.allclose(mine, theirs, rtol=1e-4, atol=1e-6)


def test_an_unfused_checkpoint_resumes_fused_where_it_left_off():
    torch.manual_seed(1)
    net = QNetwork((4, 42, 42), 5, "small-relu", dueling=False)
    old = torch.optim.Adam(net.parameters(), lr=1e-3)  # as checkpoints before `adam` saved it
    batches = [torch.randint(0, 256, (8, 4, 42, 42), dtype=torch.uint8) for _ in range(4)]
    _adam_steps(old, net, batches[:2])
    resumed_net = QNetwork((4, 42, 42), 5, "small-relu", dueling=False)
    resumed_net.load_state_dict(net.state_dict())
    resumed = adam(resumed_net.parameters(), 1e-3, 1e-8)
    load_optimizer_state(resumed, copy.deepcopy(old.state_dict()))  # as from a file
    assert resumed.param_groups[0]["fused"] is True
    assert int(resumed.state[next(resumed_net.parameters())]["step"]) == 2
    _adam_steps(old, net, batches[2:])
    _adam_steps(resumed, resumed_net, batches[2:])
    for mine, theirs in zip(resumed_net.parameters(), net.parameters(), strict=True):
        assert torch.allclose(mine, theirs, rtol=1e-4, atol=1e-6)


def test_a_resumed_optimiser_takes_its_parameters_memory_layout():
    # Saved from conv weights in the default layout (a CUDA run, or a CPU one from before
    # channels-last), resumed into channels-last ones: the fused kernel reads raw memory.
    torch.manual_seed(2)
    net = QNetwork((4, 42, 42), 5, "small-relu", dueling=False)
    saved = adam(net.parameters(), 1e-3, 1e-8)
    batches = [torch.randint(0, 256, (8, 4, 42, 42), dtype=torch.uint8) for _ in range(4)]
    _adam_steps(saved, net, batches[:2])
    resumed_net = on_device(QNetwork((4, 42, 42), 5, "small-relu", dueling=False), "cpu")
    resumed_net.load_state_dict(net.state_dict())
    conv = next(p for p in resumed_net.parameters() if p.dim() == 4)
    assert not conv.is_contiguous() and conv.is_contiguous(memory_format=torch.channels_last)
    resumed = adam(resumed_net.parameters(), 1e-3, 1e-8)
    load_optimizer_state(resumed, copy.deepcopy(saved.state_dict()))
    assert resumed.state[conv]["exp_avg"].stride() == conv.stride()
    _adam_steps(saved, net, batches[2:])
    _adam_steps(resumed, resumed_net, batches[2:])
    for mine, theirs in zip(resumed_net.parameters(), net.parameters(), strict=True):
        assert torch.allclose(mine, theirs, rtol=1e-4, atol=1e-6)
