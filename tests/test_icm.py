"""The Intrinsic Curiosity Module: shapes, its losses by hand, which loss trains the encoder,
their weighting in the update, surprisal scaling."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from gymnasium import spaces

from mario_rl.agents.ppo import (
    ICM,
    ICMLosses,
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


def test_icm_losses_by_hand():
    # phi = identity on 2-pixel observations; the inverse model ignores its input and says
    # P(a=0) = 3/4, P(a=1) = 1/4 (logits ln 3, 0); the forward model predicts
    # phi_hat(s') = [1, 0] + [0, 2] * (a == 1).
    icm = ICM(OBS_SHAPE, 2, network="small", residual_blocks=0)
    icm.encoder = torch.nn.Flatten()
    icm.inverse_model = torch.nn.Linear(4, 2)
    icm.forward_in = torch.nn.Linear(4, 2)
    icm.forward_out = torch.nn.Linear(4, 2)  # input: [x, one_hot(a)]
    with torch.no_grad():
        icm.inverse_model.weight.zero_()
        icm.inverse_model.bias.copy_(torch.tensor([math.log(3.0), 0.0]))
        icm.forward_out.weight.zero_()
        icm.forward_out.weight[1, 3] = 2.0
        icm.forward_out.bias.copy_(torch.tensor([1.0, 0.0]))
    obs = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    next_obs = torch.tensor([[1.0, 2.0], [4.0, 0.0]])
    actions = torch.tensor([0, 1])

    losses = icm.losses(obs, next_obs, actions)

    # Inverse (Pathak et al. eq. 3, cross-entropy): (-ln 3/4 - ln 1/4) / 2 = 0.8370.
    assert losses.inverse.item() == pytest.approx((math.log(4 / 3) + math.log(4)) / 2)
    # Forward (eq. 5, 0.5 ||phi_hat(s') - phi(s')||^2 against s', not s):
    # a=0: [1, 0] - [1, 2] = [0, -2] -> 0.5 * 4 = 2;  a=1: [1, 2] - [4, 0] = [-3, 2] -> 6.5.
    torch.testing.assert_close(losses.surprisal, torch.tensor([2.0, 6.5]))
    assert losses.forward.item() == pytest.approx((2.0 + 6.5) / 2)


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


def _two_by_two_agent(**overrides) -> tuple[PPOAgent, Rollout]:
    """An ICM agent for 2 envs x 2 steps, and a rollout of random frames for it."""
    obs_space = spaces.Box(0, 255, OBS_SHAPE, np.uint8)
    config = PPOConfig(
        num_envs=2, num_steps=2, num_minibatches=1, num_epochs=1, network="small",
        icm_residual_blocks=1, **overrides,
    )  # fmt: skip
    torch.manual_seed(0)
    agent = PPOAgent(config, obs_space, ACTIONS)
    rollout = Rollout.allocate(2, 2, obs_space, torch.device("cpu"))
    obs, next_obs, actions = _batch(4)
    rollout.obs[:], rollout.next_obs[:] = (
        obs.view(2, 2, *OBS_SHAPE),
        next_obs.view(2, 2, *OBS_SHAPE),
    )
    rollout.actions[:] = actions.view(2, 2)
    return agent, rollout


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # Surprisal (T=2, N=2) [[1, 4], [3, 8]]: env 0 has std 1, env 1 std 2, so the
        # intrinsic reward is [[1, 2], [3, 4]] (the mean stays in).
        ("intrinsic", [[1.0, 2.0], [3.0, 4.0]]),
        # Mixed: 0.1 x game reward [[10, 20], [30, 40]] + 0.5 x intrinsic.
        ("mixed", [[1.0 + 0.5, 2.0 + 1.0], [3.0 + 1.5, 4.0 + 2.0]]),
    ],
)
def test_reward_modes_divide_each_envs_surprisal_by_its_own_std(mode, expected, monkeypatch):
    agent, rollout = _two_by_two_agent(reward_mode=mode, reward_scale=0.1, intrinsic_coef=0.5)
    rollout.rewards[:] = torch.tensor([[10.0, 20.0], [30.0, 40.0]])
    seen = []

    def losses(obs, next_obs, actions):
        seen.append((obs, next_obs, actions))
        return ICMLosses(torch.tensor(0.0), torch.tensor(0.0), torch.tensor([1.0, 4.0, 3.0, 8.0]))

    monkeypatch.setattr(agent.icm, "losses", losses)
    rewards, metrics = agent.rewards(rollout)

    # The running stats start at mean 0, var 1 with weight 1e-4: the std moves by < 1e-3.
    torch.testing.assert_close(rewards, torch.tensor(expected), rtol=1e-3, atol=0)
    assert metrics["charts/surprisal"] == pytest.approx(4.0)  # (1 + 4 + 3 + 8) / 4
    assert metrics["charts/intrinsic_reward"] == pytest.approx(2.5, rel=1e-3)  # (1+2+3+4)/4
    # The ICM saw each transition (s_t, s_t+1, a_t) of the rollout, time-major.
    ((obs, next_obs, actions),) = seen
    assert torch.equal(obs, rollout.obs.flatten(0, 1))
    assert torch.equal(next_obs, rollout.next_obs.flatten(0, 1))
    assert torch.equal(actions, rollout.actions.flatten())


def test_return_std_divides_surprisal_by_the_std_of_its_discounted_returns(monkeypatch):
    agent, rollout = _two_by_two_agent(
        reward_mode="intrinsic", gamma=0.5, intrinsic_normalization="return-std"
    )
    surprise = torch.tensor([1.0, 2.0, 3.0, 4.0])  # (T=2, N=2) [[1, 2], [3, 4]], time-major

    def losses(obs, next_obs, actions):
        return ICMLosses(torch.tensor(0.0), torch.tensor(0.0), surprise)

    monkeypatch.setattr(agent.icm, "losses", losses)
    rewards, _ = agent.rewards(rollout)
    # Each env's return, step by step: [1, 2], then [3 + 0.5 x 1, 4 + 0.5 x 2] = [3.5, 5];
    # one std over all four, (np.std of [1, 2, 3.5, 5]): the reward is surprisal over it.
    std = np.std([1.0, 2.0, 3.5, 5.0])
    expected = torch.tensor([[1.0, 2.0], [3.0, 4.0]]) / std
    torch.testing.assert_close(rewards, expected, rtol=1e-3, atol=0)
    # The returns run on into the next rollout (not reset): [2.75, 4.5], then [4.375, 6.25].
    rewards, _ = agent.rewards(rollout)
    np.testing.assert_allclose(agent.intrinsic_returns.returns, [4.375, 6.25])
    std = np.std([1.0, 2.0, 3.5, 5.0, 2.75, 4.5, 4.375, 6.25])
    torch.testing.assert_close(
        rewards, torch.tensor([[1.0, 2.0], [3.0, 4.0]]) / std, rtol=1e-3, atol=0
    )
    # The per-env statistics of the other normalisation are left alone.
    assert agent.surprisal_stats.count == pytest.approx(0.0, abs=1e-3)


def test_intrinsic_normalization_must_be_known():
    with pytest.raises(ValueError, match="intrinsic_normalization: expected one of"):
        PPOConfig(intrinsic_normalization="reward-std")


def test_surprisal_in_minibatches_is_the_whole_rollouts_in_order():
    """`rewards` runs the ICM over the rollout one minibatch at a time (the memory it
    reuses): the same surprisal, element by element, as one pass over the rollout."""
    agent, rollout = _two_by_two_agent(reward_mode="intrinsic")
    agent.config = replace(agent.config, num_minibatches=2)
    assert agent.rollout_chunks(4) == [slice(0, 2), slice(2, 4)]
    with torch.no_grad():
        whole = agent.icm.losses(
            rollout.obs.flatten(0, 1), rollout.next_obs.flatten(0, 1), rollout.actions.flatten()
        ).surprisal.view(2, 2)
    expected = normalize_per_env(whole, RunningMeanStd((2,)))
    rewards, metrics = agent.rewards(rollout)
    torch.testing.assert_close(rewards, expected)
    assert metrics["charts/surprisal"] == pytest.approx(float(whole.mean()))


def test_the_update_weights_the_icm_losses_by_one_minus_beta_and_beta(monkeypatch):
    # Pathak et al. eq. 7 with beta = 0.25: with inverse = 2w and forward = 4w, the update's
    # loss has d/dw = (1 - 0.25) * 2 + 0.25 * 4 = 2.5 (swapped weights would give 3.5).
    agent, rollout = _two_by_two_agent(reward_mode="intrinsic", icm_forward_weight=0.25)
    w = torch.tensor(1.0, requires_grad=True)
    monkeypatch.setattr(
        agent.icm, "losses", lambda obs, *_: ICMLosses(2.0 * w, 4.0 * w, torch.ones(len(obs)))
    )
    metrics = agent.update(rollout)  # one epoch of one minibatch: one backward pass
    assert w.grad.item() == pytest.approx(2.5)
    assert (metrics["losses/icm_inverse"], metrics["losses/icm_forward"]) == (2.0, 4.0)


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
        # The reward is the surprisal over the std of its discounted returns, one scale
        # for all envs, from the statistics this rollout's 2 x 4 returns started.
        assert config.intrinsic_normalization == "return-std"
        stats = agent.intrinsic_return_stats
        assert stats.count == pytest.approx(config.num_envs * config.num_steps, abs=1e-3)
        expected = metrics["charts/surprisal"] / stats.std
        assert metrics["charts/intrinsic_reward"] == pytest.approx(expected, rel=1e-3)
    finally:
        envs.close()
