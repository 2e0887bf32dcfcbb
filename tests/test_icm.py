"""The Intrinsic Curiosity Module: shapes, which loss trains the encoder, surprisal scaling."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from gymnasium import spaces

from mario_rl.agents.ppo import (
    ICM,
    PPOAgent,
    PPOConfig,
    Rollout,
    RolloutCollector,
    RunningMeanStd,
    normalize_per_env,
    surprisal,
)
from mario_rl.env.vector import make_vector_env
from mario_rl.presets import get_preset

OBS_SHAPE = (3, 42, 42)
ACTIONS = 14


def _batch(size: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    obs = torch.randint(0, 256, (size, *OBS_SHAPE), generator=generator, dtype=torch.uint8)
    next_obs = torch.randint(0, 256, (size, *OBS_SHAPE), generator=generator, dtype=torch.uint8)
    actions = torch.randint(0, ACTIONS, (size,), generator=generator)
    return obs, next_obs, actions


@pytest.fixture
def icm() -> ICM:
    torch.manual_seed(0)
    return ICM(OBS_SHAPE, ACTIONS, network="small", residual_blocks=2)


def test_shapes(icm):
    obs, next_obs, actions = _batch()
    features = icm.features(obs)
    assert features.shape == (6, 512)
    assert icm.inverse_logits(features, icm.features(next_obs)).shape == (6, ACTIONS)
    assert icm.predict_next_features(features, actions).shape == (6, 512)
    losses = icm.losses(obs, next_obs, actions)
    assert losses.inverse.shape == losses.forward.shape == ()
    assert losses.surprisal.shape == (6,)
    assert (losses.surprisal >= 0).all()
    torch.testing.assert_close(losses.forward, losses.surprisal.mean())


def test_surprisal_is_half_the_squared_distance():
    predicted = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    torch.testing.assert_close(surprisal(predicted, target), torch.tensor([2.0, 12.5]))


def _grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in module.parameters()]


def test_the_forward_loss_leaves_the_encoder_untouched(icm):
    before = [p.detach().clone() for p in icm.encoder.parameters()]
    optimizer = torch.optim.SGD(icm.parameters(), lr=0.1)
    icm.losses(*_batch()).forward.backward()
    assert all(grad is None for grad in _grads(icm.encoder))
    assert all(grad is None for grad in _grads(icm.inverse_model))
    assert all(grad is not None and grad.abs().sum() > 0 for grad in _grads(icm.forward_in))
    optimizer.step()
    for old, new in zip(before, icm.encoder.parameters(), strict=True):
        assert torch.equal(old, new)


def test_the_inverse_loss_trains_the_encoder(icm):
    before = [p.detach().clone() for p in icm.encoder.parameters()]
    optimizer = torch.optim.SGD(icm.parameters(), lr=0.1)
    icm.losses(*_batch()).inverse.backward()
    assert all(grad is not None and grad.abs().sum() > 0 for grad in _grads(icm.encoder))
    assert all(grad is None for grad in _grads(icm.forward_in))
    optimizer.step()
    changed = [
        not torch.equal(old, new) for old, new in zip(before, icm.encoder.parameters(), strict=True)
    ]
    assert all(changed)


def test_running_mean_std_matches_numpy_per_column():
    rng = np.random.default_rng(0)
    stats = RunningMeanStd((3,), epsilon=0.0)
    batches = [rng.normal(size=(n, 3)) * [1, 10, 100] for n in (5, 17, 8)]
    for batch in batches:
        stats.update(batch)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean, everything.mean(axis=0))
    np.testing.assert_allclose(stats.var, everything.var(axis=0))
    assert stats.count == 30


def test_surprisal_is_normalised_by_each_envs_own_running_std():
    generator = torch.Generator().manual_seed(0)
    stats = RunningMeanStd((2,))
    scales = torch.tensor([1.0, 1000.0])
    for _ in range(5):
        surprise = torch.rand(64, 2, generator=generator) * scales
        normalised = normalize_per_env(surprise, stats)
    # Uniform [0, s) has std s / sqrt(12): each env's column ends up with std about 1.
    np.testing.assert_allclose(stats.std, (scales / 12**0.5).numpy(), rtol=0.1)
    np.testing.assert_allclose(normalised.std(dim=0).numpy(), [1.0, 1.0], rtol=0.2)
    assert (normalised >= 0).all()


@pytest.mark.parametrize("mode", ["intrinsic", "mixed"])
def test_reward_modes(mode):
    obs_space = spaces.Box(0, 255, OBS_SHAPE, np.uint8)
    config = PPOConfig(
        num_envs=2,
        num_steps=4,
        num_minibatches=1,
        network="small",
        reward_mode=mode,
        reward_scale=0.1,
        intrinsic_coef=0.5,
    )
    torch.manual_seed(0)
    agent = PPOAgent(config, obs_space, ACTIONS)
    rollout = Rollout.allocate(4, 2, obs_space, torch.device("cpu"))
    obs, next_obs, actions = _batch(8)
    rollout.obs[:], rollout.next_obs[:] = (
        obs.view(4, 2, *OBS_SHAPE),
        next_obs.view(4, 2, *OBS_SHAPE),
    )
    rollout.actions[:] = actions.view(4, 2)
    rollout.rewards[:] = torch.arange(8.0).view(4, 2)
    with torch.no_grad():
        surprise = agent.icm.losses(obs, next_obs, actions).surprisal.view(4, 2)
    intrinsic = normalize_per_env(surprise, RunningMeanStd((2,)))

    rewards, metrics = agent.rewards(rollout)

    expected = intrinsic if mode == "intrinsic" else 0.1 * rollout.rewards + 0.5 * intrinsic
    torch.testing.assert_close(rewards, expected)
    assert metrics["charts/surprisal"] == pytest.approx(surprise.mean().item())


def test_the_policy_shares_no_weights_with_the_encoder():
    config = PPOConfig(num_envs=1, num_steps=4, num_minibatches=1, reward_mode="intrinsic")
    agent = PPOAgent(config, spaces.Box(0, 255, (3, 84, 84), np.uint8), ACTIONS)
    policy = {id(p) for p in agent.policy.parameters()}
    assert not policy & {id(p) for p in agent.icm.parameters()}


def test_the_curiosity_preset_collects_and_updates_on_its_own_pipeline():
    env_config, preset = get_preset("curiosity-ppo").env, get_preset("curiosity-ppo").agent
    env_config = replace(env_config, normalize_moves=20)
    config = replace(
        preset, num_envs=2, num_steps=4, num_minibatches=1, num_epochs=1, icm_residual_blocks=1
    )
    envs = make_vector_env(config.num_envs, env_config, seed=0)
    try:
        assert envs.single_observation_space.shape == (3, 84, 84)
        assert envs.single_action_space.n == ACTIONS
        torch.manual_seed(0)
        agent = PPOAgent(config, envs.single_observation_space, ACTIONS)
        collector = RolloutCollector(envs, agent, config.num_steps, seed=0)
        rollout, _ = collector.collect()
        assert rollout.obs.dtype == torch.float32
        assert collector.frames.total == 2 * 4 * 12
        metrics = agent.update(rollout)
        assert metrics["charts/intrinsic_reward"] > 0
    finally:
        envs.close()
