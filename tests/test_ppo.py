"""PPO: the maths against hand-worked numbers, the networks, one update, and rollouts."""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from mario_rl.agents import load_policy
from mario_rl.agents.ppo import (
    ActorCritic,
    PPOAgent,
    PPOConfig,
    Rollout,
    RolloutCollector,
    annealed_entropy_coef,
    annealed_learning_rate,
    compute_gae,
    entropy,
    entropy_floor_loss,
    explained_variance,
    ppo_clip_loss,
    ppo_clip_loss_per_element,
    value_loss,
)
from mario_rl.agents.ppo.rollout import act
from mario_rl.env.pipeline import EnvConfig
from mario_rl.env.vector import make_vector_env, make_vector_env_groups
from mario_rl.env.wrappers import EpisodeStatistics, TruncateOnNoProgress
from mario_rl.runs import load_checkpoint, save_checkpoint


def test_gae_against_hand_worked_values_with_a_truncation_and_a_termination():
    # gamma = lambda = 0.5. Env 0 is truncated at t=1 (bootstraps from V(final_obs) = 10)
    # and terminated at t=3 (no bootstrap; its next value 99 must be ignored).
    # deltas: 1 + .5*1 - .5 = 1;  2 + .5*10 - 1 = 6;  3 + .5*2 - 1.5 = 2.5;  4 - 2 = 2;
    #         5 + .5*3 - 2.5 = 4.  Backwards with gamma*lambda = .25, stopping at ends:
    # A4 = 4; A3 = 2; A2 = 2.5 + .25*2 = 3; A1 = 6; A0 = 1 + .25*6 = 2.5.
    # Env 1 never ends: only the last step has a reward (1 + .5*2 = 2), discounted back by .25.
    rewards = torch.tensor([[1.0, 0], [2, 0], [3, 0], [4, 0], [5, 1]])
    values = torch.tensor([[0.5, 0], [1, 0], [1.5, 0], [2, 0], [2.5, 0]])
    next_values = torch.tensor([[1.0, 0], [10, 0], [2, 0], [99, 0], [3, 2]])
    truncated = torch.tensor([[0, 0], [1, 0], [0, 0], [0, 0], [0, 0]], dtype=torch.bool)
    terminated = torch.tensor([[0, 0], [0, 0], [0, 0], [1, 0], [0, 0]], dtype=torch.bool)

    advantages = compute_gae(rewards, values, next_values, terminated, truncated, 0.5, 0.5)

    expected = torch.tensor(
        [[2.5, 2 * 0.25**4], [6, 2 * 0.25**3], [3, 2 * 0.25**2], [2, 0.5], [4, 2]]
    )
    torch.testing.assert_close(advantages, expected)


def test_gae_with_lambda_one_and_no_ends_is_the_discounted_return_minus_value():
    rewards = torch.tensor([[1.0], [1.0], [1.0]])
    values = torch.tensor([[0.3], [0.2], [0.1]])
    next_values = torch.tensor([[0.2], [0.1], [4.0]])
    no = torch.zeros(3, 1, dtype=torch.bool)
    advantages = compute_gae(rewards, values, next_values, no, no, 0.9, 1.0)
    discounted = torch.tensor([[1 + 0.9 + 0.81 + 0.729 * 4], [1 + 0.9 + 0.81 * 4], [1 + 3.6]])
    torch.testing.assert_close(advantages + values, discounted)


@pytest.mark.parametrize(
    ("ratio", "advantage", "loss"),
    [(1.2, 1.0, -1.1), (0.8, 1.0, -0.8), (1.2, -1.0, 1.2), (0.8, -1.0, 0.9)],
)
def test_clip_loss_reproduces_the_write_ups_table(ratio, advantage, loss):
    result = ppo_clip_loss_per_element(torch.tensor([ratio]), torch.tensor([advantage]), 0.1)
    assert result.item() == pytest.approx(loss)


def test_clip_loss_is_the_mean_over_the_batch():
    ratio = torch.tensor([1.2, 0.8, 1.2, 0.8])
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0])
    assert ppo_clip_loss(ratio, advantages, 0.1).item() == pytest.approx(
        (-1.1 - 0.8 + 1.2 + 0.9) / 4
    )


def test_value_loss_plain_and_clipped():
    values, returns, old = (
        torch.tensor([2.0, 0.0]),
        torch.tensor([3.0, 0.5]),
        torch.tensor([1.0, 0.0]),
    )
    # Plain: 0.5 * mean((2-3)^2, (0-0.5)^2) = 0.5 * (1 + 0.25) / 2.
    assert value_loss(values, returns, old).item() == pytest.approx(0.3125)
    # Clipped at 0.1: V0 clips to 1.1, (1.1-3)^2 = 3.61 is worse than 1; V1 does not move.
    assert value_loss(values, returns, old, clip=0.1).item() == pytest.approx(
        0.5 * (3.61 + 0.25) / 2
    )


def test_entropy_of_a_uniform_policy_is_log_of_the_action_count():
    assert entropy(torch.zeros(3, 7)).item() == pytest.approx(math.log(7))


def test_learning_rate_annealing():
    assert annealed_learning_rate(1e-3, 0.25, anneal=True) == pytest.approx(7.5e-4)
    assert annealed_learning_rate(1e-3, 1.5, anneal=True) == 0.0
    assert annealed_learning_rate(1e-3, 0.25, anneal=False) == 1e-3


def test_entropy_weight_annealing():
    assert annealed_entropy_coef(0.01, 0.002, 0.5) == pytest.approx(0.006)
    assert annealed_entropy_coef(0.01, 0.002, 2.0) == pytest.approx(0.002)
    assert annealed_entropy_coef(0.01, None, 0.9) == 0.01
    with pytest.raises(ValueError, match="entropy_coef_end"):
        PPOConfig(entropy_coef_end=-0.1)


def test_config_rejects_bad_values_with_actionable_errors():
    with pytest.raises(ValueError, match=r"num_minibatches: expected a divisor of .* = 24, got 5"):
        PPOConfig(num_envs=3, num_steps=8, num_minibatches=5)
    with pytest.raises(ValueError, match="env_groups: expected a divisor of num_envs=8, got 3"):
        PPOConfig(num_envs=8, env_groups=3)
    with pytest.raises(ValueError, match="reward_mode: expected one of extrinsic, intrinsic"):
        PPOConfig(reward_mode="game")
    with pytest.raises(ValueError, match="network: expected one of nature, small, got 'big'"):
        PPOConfig(network="big")
    with pytest.raises(ValueError, match="num_envs: expected a positive integer, got 0"):
        PPOConfig(num_envs=0)
    with pytest.raises(ValueError, match=r"snapshot_start_probability: expected 0\.\.1, got -0\.1"):
        PPOConfig(snapshot_start_probability=-0.1)
    with pytest.raises(ValueError, match="snapshot_pool: expected a positive integer, got 0"):
        PPOConfig(snapshot_pool=0)


def test_explained_variance_by_hand():
    target = torch.tensor([1.0, 2.0, 3.0])  # Var = ((-1)^2 + 0 + 1^2) / 2 = 1
    # Residuals [0, 0, 1]: mean 1/3, Var = (1/9 + 1/9 + 4/9) / 2 = 1/3, so 1 - 1/3.
    assert explained_variance(torch.tensor([1.0, 2.0, 2.0]), target) == pytest.approx(2 / 3)
    # Residuals [-2, 0, 2]: Var 4, worse than predicting the mean: 1 - 4 = -3.
    assert explained_variance(torch.tensor([3.0, 2.0, 1.0]), target) == pytest.approx(-3.0)
    # A constant prediction leaves the target's own variance: 0. A perfect one: 1.
    assert explained_variance(torch.tensor([5.0, 5.0, 5.0]), target) == pytest.approx(0.0)
    assert explained_variance(target, target) == pytest.approx(1.0)
    assert math.isnan(explained_variance(target, torch.full((3,), 2.0)))


def _agent_with_losses_of(w: torch.Tensor, monkeypatch, **settings) -> tuple[PPOAgent, Rollout]:
    """A one-minibatch agent whose clipped, value and entropy losses are 0.3w, 2w and 1.5w
    (value_coef 0.5, entropy_coef 0.1 unless `settings` say otherwise), and a rollout."""
    obs_space = spaces.Box(0, 255, (4, 42, 42), np.uint8)
    config = PPOConfig(
        num_envs=2, num_steps=2, num_minibatches=1, num_epochs=1, network="small",
        value_coef=0.5, entropy_coef=0.1, **settings,
    )  # fmt: skip
    module = "mario_rl.agents.ppo.agent"
    monkeypatch.setattr(f"{module}.ppo_clip_loss", lambda *_: 0.3 * w)
    monkeypatch.setattr(f"{module}.value_loss", lambda *_: 2.0 * w)
    monkeypatch.setattr(f"{module}.entropy", lambda *_: 1.5 * w)
    return PPOAgent(config, obs_space, num_actions=5), _fake_rollout(obs_space, 2, 2, 5)


def test_the_update_combines_the_losses_as_ppo_eq_9(monkeypatch):
    # loss = policy - c_entropy * entropy + c_value * value. With policy 0.3w, value 2w,
    # entropy 1.5w, value_coef 0.5 and the entropy weight annealed halfway from 0.1 to 0
    # (0.05): d loss / dw = 0.3 + 0.5 * 2 - 0.05 * 1.5 = 1.225.
    w = torch.tensor(1.0, requires_grad=True)
    agent, rollout = _agent_with_losses_of(w, monkeypatch, entropy_coef_end=0.0)
    metrics = agent.update(rollout, progress=0.5)  # one backward
    assert w.grad.item() == pytest.approx(1.225)
    assert metrics["charts/entropy_coef"] == pytest.approx(0.05)


def test_the_entropy_floor_loss_counts_only_the_states_under_the_floor():
    # Uniform over 4 actions: log 4 = 1.386 nats, above a floor of 1, so it counts 0. Logits
    # (20, 0, 0, 0): about 0 nats, under it; KL(u || pi) = -mean log pi - log 4 with
    # log pi = (0, -20, -20, -20) (to float rounding): 15 - 1.386. Mean over the 2 states.
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [20.0, 0.0, 0.0, 0.0]])
    loss, under = entropy_floor_loss(logits, 1.0)
    assert loss.item() == pytest.approx((15.0 - math.log(4)) / 2, abs=1e-4)
    assert under.item() == 0.5
    loss, under = entropy_floor_loss(logits, 0.0)
    assert loss.item() == 0.0 and under.item() == 0.0


def test_the_entropy_floor_pulls_a_saturated_state_where_the_entropy_bonus_cannot():
    # A logit gap of 14: the entropy's gradient has nearly vanished; the floor's is about
    # pi - u = (0.8, -0.2, ...), of norm 0.89, halved by the mean over the 2 states, and it
    # raises the entropy. A state above the floor gets none.
    logits = torch.tensor([[14.0, 0.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0, 0.0]])
    logits.requires_grad_(True)
    entropy(logits[:1]).backward()
    assert logits.grad[0].norm() < 1e-3
    logits.grad = None
    entropy_floor_loss(logits, 0.5)[0].backward()
    assert logits.grad[0].norm() > 0.44 and logits.grad[1].abs().max() == 0.0
    stepped = (logits - 0.5 * logits.grad).detach()
    assert entropy(stepped[:1]) > entropy(logits[:1].detach())


def test_the_entropy_floor_adds_its_weighted_loss_to_the_update(monkeypatch):
    # As PPO's eq. 9 test, without annealing, plus the floor's term:
    # 0.3 + 0.5 * 2 - 0.1 * 1.5 + 0.2 * 0.4 = 1.23.
    w = torch.tensor(1.0, requires_grad=True)
    agent, rollout = _agent_with_losses_of(
        w, monkeypatch, entropy_floor=0.5, entropy_floor_coef=0.2
    )
    calls = []

    def floor_loss(logits, floor):
        calls.append((logits.shape, logits.requires_grad, floor))
        return 0.4 * w, torch.tensor(0.25)

    monkeypatch.setattr("mario_rl.agents.ppo.agent.entropy_floor_loss", floor_loss)
    metrics = agent.update(rollout, progress=0.0)
    assert w.grad.item() == pytest.approx(1.23)
    # The policy's own logits for the minibatch, still in the graph, and the configured floor.
    assert calls == [(torch.Size([4, 5]), True, 0.5)]
    assert metrics["losses/entropy_floor"] == pytest.approx(0.4)
    assert metrics["losses/under_entropy_floor"] == pytest.approx(0.25)


def test_without_a_floor_the_update_neither_pays_nor_charts_one(monkeypatch):
    obs_space = spaces.Box(0, 255, (4, 42, 42), np.uint8)
    config = PPOConfig(num_envs=2, num_steps=2, num_minibatches=1, num_epochs=1, network="small")
    agent = PPOAgent(config, obs_space, num_actions=5)

    def never(*_):
        raise AssertionError("the floor's loss was computed with the floor off")

    monkeypatch.setattr("mario_rl.agents.ppo.agent.entropy_floor_loss", never)
    metrics = agent.update(_fake_rollout(obs_space, 2, 2, 5), 0.0)
    assert not any("floor" in key for key in metrics)


def test_an_entropy_floor_a_uniform_policy_cannot_reach_is_refused():
    obs_space = spaces.Box(0, 255, (4, 42, 42), np.uint8)
    with pytest.raises(ValueError, match=r"entropy_floor: expected below log\(5\) = 1\.609"):
        PPOAgent(PPOConfig(network="small", entropy_floor=1.7), obs_space, num_actions=5)
    with pytest.raises(ValueError, match="entropy_floor: expected below log"):
        PPOAgent(PPOConfig(network="small", entropy_floor=math.log(5)), obs_space, num_actions=5)
    PPOAgent(PPOConfig(network="small", entropy_floor=1.6), obs_space, num_actions=5)
    PPOAgent(PPOConfig(network="small"), obs_space, num_actions=1)  # no floor, no bound
    with pytest.raises(ValueError, match="entropy_floor: expected nats >= 0"):
        PPOConfig(entropy_floor=-0.5)
    with pytest.raises(ValueError, match="entropy_floor_coef: expected a weight >= 0"):
        PPOConfig(entropy_floor_coef=-1.0)


@pytest.mark.parametrize(("torso", "shape"), [("nature", (4, 84, 84)), ("small", (4, 42, 42))])
def test_actor_critic_shapes_for_uint8_and_float_inputs(torso, shape):
    net = ActorCritic(shape, num_actions=5, network=torso)
    pixels = torch.randint(0, 256, (3, *shape), dtype=torch.uint8)
    logits, values = net(pixels)
    assert logits.shape == (3, 5) and values.shape == (3,)
    torch.testing.assert_close(net(pixels.float() / 255)[0], logits)


def _fake_rollout(obs_space: spaces.Box, steps: int, envs: int, actions: int) -> Rollout:
    generator = torch.Generator().manual_seed(0)
    rollout = Rollout.allocate(steps, envs, obs_space, torch.device("cpu"))
    shape = rollout.obs.shape
    rollout.obs[:] = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    rollout.next_obs[:] = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    rollout.actions[:] = torch.randint(0, actions, (steps, envs), generator=generator)
    rollout.rewards[:] = torch.randn(steps, envs, generator=generator)
    return rollout


def test_one_update_lowers_the_clipped_objective_on_its_batch():
    torch.manual_seed(0)
    obs_space = spaces.Box(0, 255, (4, 42, 42), np.uint8)
    config = PPOConfig(
        num_envs=4,
        num_steps=16,
        num_minibatches=2,
        num_epochs=4,
        network="small",
        learning_rate=1e-3,
        anneal_lr=False,
        value_coef=0.0,
        entropy_coef=0.0,
        normalize_advantages=False,
    )
    agent = PPOAgent(config, obs_space, num_actions=5)
    rollout = _fake_rollout(obs_space, 16, 4, 5)
    obs = rollout.obs.flatten(0, 1)
    with torch.no_grad():
        logits, values = agent.policy(obs)
    rollout.values[:] = values.view(16, 4)
    rollout.logprobs[:] = (
        torch.distributions.Categorical(logits=logits)
        .log_prob(rollout.actions.flatten())
        .view(16, 4)
    )
    rollout.next_values[:] = rollout.values
    advantages = compute_gae(
        rollout.rewards,
        rollout.values,
        rollout.next_values,
        rollout.terminated,
        rollout.truncated,
        config.gamma,
        config.gae_lambda,
    ).flatten()

    def objective() -> float:
        with torch.no_grad():
            new_logits, _ = agent.policy(obs)
            logprobs = torch.distributions.Categorical(logits=new_logits).log_prob(
                rollout.actions.flatten()
            )
            ratio = (logprobs - rollout.logprobs.flatten()).exp()
            return ppo_clip_loss(ratio, advantages, config.clip_coef).item()

    before = objective()
    metrics = agent.update(rollout)
    assert objective() < before - 1e-3
    assert metrics["charts/learning_rate"] == 1e-3
    assert all(math.isfinite(v) for k, v in metrics.items() if k != "losses/explained_variance")
    assert "losses/icm_inverse" not in metrics


class _Scripted:
    """Scripted envs with episode ends at known steps, wrapped as `make_env` would."""

    def __init__(self, scripted_env, length: int, patience: int) -> None:
        self.scripted_env, self.length, self.patience = scripted_env, length, patience

    def __call__(self):
        env = self.scripted_env(length=self.length, shape=(1, 42, 42), x_script=[0] * 64)
        return EpisodeStatistics(TruncateOnNoProgress(env, self.patience))


def _collect_scripted(scripted_env, **overrides):
    """One 5-step rollout of two scripted envs: env 0 is truncated after 3 steps without
    progress, env 1 terminates after 2 steps. The frame after step t is filled with t + 1."""
    envs = SyncVectorEnv(
        [_Scripted(scripted_env, 50, 3), _Scripted(scripted_env, 2, 50)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    config = PPOConfig(num_envs=2, num_steps=5, num_minibatches=1, network="small", **overrides)
    torch.manual_seed(0)
    agent = PPOAgent(config, envs.single_observation_space, 3)
    collector = RolloutCollector(envs, agent, config.num_steps, seed=0)
    try:
        rollout, episodes = collector.collect()
    finally:
        envs.close()
    return agent, collector, rollout, episodes


def test_collector_bootstraps_truncations_from_the_final_observation(scripted_env):
    agent, collector, rollout, episodes = _collect_scripted(scripted_env)

    assert rollout.truncated[:, 0].tolist() == [False, False, True, False, False]
    assert rollout.terminated[:, 1].tolist() == [False, True, False, True, False]
    # The frame after step t is filled with t + 1; at an end it is the final one, not a reset.
    assert rollout.next_obs[2, 0].unique().tolist() == [3]
    assert rollout.obs[3, 0].unique().tolist() == [0]
    assert rollout.next_obs[1, 1].unique().tolist() == [2]
    final_value = agent.value(rollout.next_obs[2, 0][None])
    torch.testing.assert_close(rollout.next_values[2, 0], final_value[0])
    torch.testing.assert_close(rollout.next_values[0], rollout.values[1])
    torch.testing.assert_close(rollout.next_values[-1], agent.value(collector.obs))
    assert [(frames, e["length"]) for frames, e in episodes] == [(4, 2), (6, 3), (8, 2)]
    assert collector.frames.total == 10


def test_the_death_pairing_ablation_stores_the_next_start_at_terminations_only(scripted_env):
    _, _, rollout, _ = _collect_scripted(scripted_env, terminal_next_obs="next-start")
    assert rollout.terminated[:, 1].tolist() == [False, True, False, True, False]
    # Env 1's terminations store the next episode's first frame (a reset's, filled with 0)...
    assert rollout.next_obs[1, 1].unique().tolist() == [0]
    assert rollout.next_obs[3, 1].unique().tolist() == [0]
    assert rollout.next_obs[0, 1].unique().tolist() == [1]
    # ...and env 0's truncation still its own final frame, which its value bootstraps from.
    assert rollout.next_obs[2, 0].unique().tolist() == [3]


def test_terminal_next_obs_must_be_a_known_pairing():
    with pytest.raises(ValueError, match="terminal_next_obs: expected one of final, next-start"):
        PPOConfig(terminal_next_obs="reset")


def test_short_real_rollout_on_1_1_and_an_update_with_curiosity():
    env_config = EnvConfig(level="1-1", actions="right_only", resize=(42, 42))
    config = PPOConfig(
        num_envs=2,
        num_steps=8,
        num_minibatches=2,
        num_epochs=1,
        network="small",
        reward_mode="mixed",
        icm_residual_blocks=1,
    )
    envs = make_vector_env(config.num_envs, env_config, seed=0)
    try:
        torch.manual_seed(0)
        agent = PPOAgent(config, envs.single_observation_space, envs.single_action_space.n)
        collector = RolloutCollector(envs, agent, config.num_steps, seed=0)
        rollout, _ = collector.collect()
        assert rollout.obs.shape == (8, 2, 4, 42, 42) and rollout.obs.dtype == torch.uint8
        assert collector.frames.total == 2 * 8 * 4
        assert torch.equal(rollout.obs[1:], rollout.next_obs[:-1])
        metrics = agent.update(rollout, progress=0.5)
        assert metrics["charts/learning_rate"] == pytest.approx(config.learning_rate / 2)
        assert math.isfinite(metrics["losses/icm_inverse"])
        assert math.isfinite(metrics["losses/icm_forward"])
        # Mixed mode still reports the ICM's reward: this rollout's surprisal over each
        # env's running std, from the stats it updated (mean_e of mean_e / std_e).
        stats = agent.surprisal_stats
        assert metrics["charts/surprisal"] == pytest.approx(stats.mean.mean(), rel=1e-3)
        expected = (stats.mean / stats.std).mean()
        assert metrics["charts/intrinsic_reward"] == pytest.approx(expected, rel=1e-3)
    finally:
        envs.close()


@pytest.mark.parametrize("normalization", ["surprisal-std", "return-std"])
def test_a_checkpoint_resumes_the_agent_and_loads_as_a_policy(tmp_path, normalization):
    obs_space = spaces.Box(0, 255, (4, 42, 42), np.uint8)
    config = PPOConfig(
        num_envs=2,
        num_steps=4,
        num_minibatches=1,
        network="small",
        reward_mode="mixed",
        intrinsic_normalization=normalization,
    )
    env_config = EnvConfig(actions="right_only", resize=(42, 42))
    agent = PPOAgent(config, obs_space, 5)
    agent.update(_fake_rollout(obs_space, 4, 2, 5))
    path = save_checkpoint(tmp_path, 64, agent.checkpoint(env_config), keep=2)

    resumed = PPOAgent(config, obs_space, 5)
    resumed.load_checkpoint(load_checkpoint(path))
    obs = torch.randint(0, 256, (3, 4, 42, 42), dtype=torch.uint8)
    torch.testing.assert_close(resumed.policy(obs), agent.policy(obs))
    torch.testing.assert_close(resumed.icm.features(obs), agent.icm.features(obs))
    np.testing.assert_array_equal(resumed.surprisal_stats.var, agent.surprisal_stats.var)
    returns, stats = agent.intrinsic_returns, agent.intrinsic_return_stats
    assert (returns.returns != 0).all() == (normalization == "return-std")
    np.testing.assert_array_equal(resumed.intrinsic_returns.returns, returns.returns)
    assert (resumed.intrinsic_return_stats.var, resumed.intrinsic_return_stats.count) == (
        stats.var,
        stats.count,
    )

    policy = load_policy(path)
    assert (policy.algo, policy.env_config, policy.num_actions) == ("ppo-icm", env_config, 5)
    greedy = agent.act(obs, greedy=True)[0].numpy()
    np.testing.assert_array_equal(policy.act(obs.numpy()), greedy)


def _collect_and_update(scripted_env, seed: int) -> tuple[Rollout, dict[str, float]]:
    envs = SyncVectorEnv(
        [_Scripted(scripted_env, 7, 3), _Scripted(scripted_env, 4, 50)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    config = PPOConfig(num_envs=2, num_steps=6, num_minibatches=2, network="small")
    torch.manual_seed(seed)
    agent = PPOAgent(config, envs.single_observation_space, 3)
    collector = RolloutCollector(envs, agent, config.num_steps, seed=seed)
    rollout, _ = collector.collect()
    metrics = agent.update(rollout)
    envs.close()
    return rollout, metrics


def test_the_same_seed_gives_the_same_rollout_and_update(scripted_env):
    first, first_metrics = _collect_and_update(scripted_env, seed=3)
    second, second_metrics = _collect_and_update(scripted_env, seed=3)
    assert torch.equal(first.actions, second.actions)
    assert torch.equal(first.values, second.values)
    assert first_metrics == second_metrics


def test_acting_with_uniforms_inverts_each_policy_cdf():
    # Probabilities 0.1, 0.2, 0.7: draws below 0.1 pick action 0, below 0.3 action 1.
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7]]))

    def policy(obs):
        return logits.expand(len(obs), 3), torch.zeros(len(obs))

    draws = torch.tensor([0.05, 0.25, 0.35, 0.999])
    actions, logprobs, _ = act(policy, torch.zeros(4, 1), uniforms=draws)
    assert actions.tolist() == [0, 1, 2, 2]
    torch.testing.assert_close(logprobs, torch.log(torch.tensor([0.1, 0.2, 0.7, 0.7])))
    many = act(policy, torch.zeros(30_000, 1), uniforms=torch.rand(30_000))[0]
    shares = torch.bincount(many, minlength=3) / 30_000
    torch.testing.assert_close(shares, torch.tensor([0.1, 0.2, 0.7]), atol=0.015, rtol=0)


def test_env_groups_collect_the_same_rollout_as_one_vector_env():
    env_config = EnvConfig(
        level="1-1", actions="right_only", resize=(42, 42), noop_max=8, sticky_probability=0.25
    )
    config = PPOConfig(num_envs=4, num_steps=12, num_minibatches=1, network="small")
    torch.manual_seed(0)
    envs = make_vector_env(4, env_config, seed=5)
    groups = make_vector_env_groups(4, 2, env_config, seed=5)
    try:
        agent = PPOAgent(config, envs.single_observation_space, 5)
        one = RolloutCollector(envs, agent, config.num_steps, seed=3)
        two = RolloutCollector(groups, agent, config.num_steps, seed=3)
        assert one.frames.total == two.frames.total
        for _ in range(2):
            (a, _), (b, _) = one.collect(), two.collect()
            assert torch.equal(a.obs, b.obs) and torch.equal(a.next_obs, b.next_obs)
            assert torch.equal(a.actions, b.actions) and torch.equal(a.rewards, b.rewards)
            torch.testing.assert_close(a.logprobs, b.logprobs)
            torch.testing.assert_close(a.next_values, b.next_values)
            assert one.frames.total == two.frames.total
        assert len(a.actions.unique()) > 1, "the policy samples, so the draws matter"
    finally:
        envs.close()
        for group in groups:
            group.close()
