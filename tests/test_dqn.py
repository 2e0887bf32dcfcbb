"""DQN maths against hand-worked numbers, a DQN that must learn a tiny chain, the torsos,
and the training loop's reward scaling and snapshot-start wiring."""

import copy
import csv
import functools
import warnings
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from dqn_chain import ChainEnv, chain_envs
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from mario_rl.agents import load_policy
from mario_rl.agents.dqn import (
    DQNConfig,
    DQNLearner,
    DQNTrainer,
    double_dqn_target,
    dqn_target,
    epsilon_at,
    make_envs,
    multiplicative_epsilon,
    td_loss,
    three_phase_epsilon,
)
from mario_rl.env.pipeline import EnvConfig
from mario_rl.env.snapshots import ResetFromOwnSnapshots
from mario_rl.env.wrappers import EpisodeStatistics
from mario_rl.evaluate import evaluate
from mario_rl.nets import QNetwork, on_device
from mario_rl.replay import FrameReplay
from mario_rl.runs import RunConfig, load_checkpoint
from mario_rl.training import train


def test_dqn_target_by_hand():
    returns = torch.tensor([1.0, 0.5, -1.0])
    discounts = torch.tensor([0.9, 0.0, 0.81])  # middle one ended terminal
    next_q = torch.tensor([[2.0, 4.0], [10.0, 3.0], [-2.0, -3.0]])
    # 1 + 0.9*4 = 4.6;  0.5 + 0 = 0.5;  -1 + 0.81*(-2) = -2.62
    torch.testing.assert_close(
        dqn_target(returns, discounts, next_q), torch.tensor([4.6, 0.5, -2.62])
    )


def test_double_dqn_target_by_hand():
    returns = torch.tensor([1.0, 0.0])
    discounts = torch.tensor([0.5, 0.9])
    next_online = torch.tensor([[1.0, 3.0, 2.0], [5.0, 0.0, 1.0]])  # argmax: 1, 0
    next_target = torch.tensor([[10.0, 2.0, 30.0], [4.0, 8.0, 6.0]])
    # Online picks a1 -> target says 2: 1 + 0.5*2 = 2 (plain DQN would use 30: 16).
    # Online picks a0 -> target says 4: 0 + 0.9*4 = 3.6.
    torch.testing.assert_close(
        double_dqn_target(returns, discounts, next_online, next_target), torch.tensor([2.0, 3.6])
    )
    torch.testing.assert_close(
        dqn_target(returns, discounts, next_target), torch.tensor([16.0, 7.2])
    )


def test_losses_by_hand():
    q = torch.tensor([0.0, 0.0])
    y = torch.tensor([0.5, 3.0])
    # Huber: 0.5*0.5^2 = 0.125 and 3 - 0.5 = 2.5 -> mean 1.3125.
    assert td_loss(q, y, "huber").item() == pytest.approx(1.3125)
    assert td_loss(q, y, "l1").item() == pytest.approx(1.75)
    assert td_loss(q, y, "mse").item() == pytest.approx((0.25 + 9.0) / 2)


def test_weighted_losses_by_hand():
    q = torch.tensor([0.0, 0.0])
    y = torch.tensor([1.0, 3.0])
    weights = torch.tensor([1.0, 0.5])
    # Per transition: huber 0.5 and 2.5, l1 1 and 3, mse 1 and 9; weighted, then the mean.
    assert td_loss(q, y, "huber", weights).item() == pytest.approx((0.5 + 1.25) / 2)
    assert td_loss(q, y, "l1", weights).item() == pytest.approx((1 + 1.5) / 2)
    assert td_loss(q, y, "mse", weights).item() == pytest.approx((1 + 4.5) / 2)
    assert td_loss(q, y, "mse").item() == pytest.approx(5.0)


def test_multiplicative_epsilon():
    assert multiplicative_epsilon(0, 1.0, 0.5, 0.1) == 1.0
    assert multiplicative_epsilon(2, 1.0, 0.5, 0.1) == 0.25
    assert multiplicative_epsilon(10, 1.0, 0.5, 0.1) == 0.1
    # The blog's rate reaches its 0.1 floor after ln(0.1)/ln(0.99999975) = 9.21 M steps.
    assert multiplicative_epsilon(9_000_000, 1.0, 0.99999975, 0.1) > 0.1
    assert multiplicative_epsilon(9_300_000, 1.0, 0.99999975, 0.1) == 0.1


def test_three_phase_epsilon():
    schedule = functools.partial(three_phase_epsilon, start=1.0, end=0.2, observe=10, anneal=40)
    assert [schedule(s) for s in (0, 9, 10, 30, 50, 1000)] == [1.0, 1.0, 1.0, 0.6, 0.2, 0.2]


def test_config_picks_the_schedule():
    keras = DQNConfig(
        epsilon_schedule="three_phase",
        epsilon_start=0.1,
        epsilon_end=0.0,
        epsilon_observe=5,
        epsilon_anneal=10,
    )
    assert epsilon_at(4, keras) == 0.1 and epsilon_at(10, keras) == pytest.approx(0.05)
    assert epsilon_at(1, DQNConfig(epsilon_decay=0.5, epsilon_end=0.0)) == 0.5


def test_bad_config_is_one_clear_error():
    with pytest.raises(ValueError, match="loss: expected one of huber, l1, mse, got 'l2'"):
        DQNConfig(loss="l2")
    with pytest.raises(ValueError, match="reward_scale: expected a positive number, got 0"):
        DQNConfig(reward_scale=0)
    with pytest.raises(ValueError, match=r"snapshot_start_probability: expected 0\.\.1, got 1\.5"):
        DQNConfig(snapshot_start_probability=1.5)
    with pytest.raises(ValueError, match="snapshot_every: expected a positive integer, got 0"):
        DQNConfig(snapshot_every=0)
    with pytest.raises(ValueError, match="env_groups: expected a divisor of num_envs=4, got 3"):
        DQNConfig(num_envs=4, env_groups=3)


@pytest.mark.parametrize("dueling", [False, True])
def test_nature_cnn_shapes_and_uint8_scaling(dueling):
    net = QNetwork((4, 84, 84), 5, "nature", dueling)
    conv_shapes = [tuple(m.weight.shape) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert conv_shapes == [(32, 4, 8, 8), (64, 32, 4, 4), (64, 64, 3, 3)]
    obs = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    torch.testing.assert_close(net(obs), net(obs.float() / 255))
    assert net(obs).shape == (2, 5)


def test_on_the_cpu_networks_are_channels_last_with_the_same_outputs_and_checkpoints():
    torch.manual_seed(0)
    plain = QNetwork((4, 42, 42), 5, "small", dueling=True)
    fast = on_device(copy.deepcopy(plain), "cpu")
    conv = next(m for m in fast.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    obs = torch.randint(0, 256, (6, 4, 42, 42), dtype=torch.uint8)
    torch.testing.assert_close(fast(obs), plain(obs), rtol=1e-5, atol=1e-5)
    # Its state dict loads into a plain network and gives the same outputs again.
    reloaded = QNetwork((4, 42, 42), 5, "small", dueling=True)
    reloaded.load_state_dict(fast.state_dict())
    torch.testing.assert_close(reloaded(obs), plain(obs), rtol=1e-5, atol=1e-5)


def test_dueling_head_recombines_v_plus_a_minus_mean_a_by_hand():
    # Wang et al. 2016, eq. 9. Hand-set head on features x = (x0, x1), torso bypassed:
    # A = (x0, x1, 3), V = x0 + 0.5.
    net = QNetwork((2,), 3, "mlp", dueling=True)
    net.torso = torch.nn.Identity()
    net.advantage, net.value = torch.nn.Linear(2, 3), torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.advantage.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        net.advantage.bias.copy_(torch.tensor([0.0, 0.0, 3.0]))
        net.value.weight.copy_(torch.tensor([[1.0, 0.0]]))
        net.value.bias.fill_(0.5)
    q = net(torch.tensor([[1.0, 2.0], [6.0, 0.0]]))
    # x = (1, 2): A = [1, 2, 3], mean 2, V = 1.5 -> Q = 1.5 + [-1, 0, 1] = [0.5, 1.5, 2.5].
    # x = (6, 0): A = [6, 0, 3], mean 3, V = 6.5 -> Q = 6.5 + [3, -3, 0] = [9.5, 3.5, 6.5].
    # (The batch-wide mean, 2.5, or max A instead of the mean would give other numbers.)
    torch.testing.assert_close(q, torch.tensor([[0.5, 1.5, 2.5], [9.5, 3.5, 6.5]]))


@pytest.mark.parametrize(("network", "activation"), [("small", "ExpELU"), ("small-relu", "ReLU")])
def test_small_torsos_differ_only_in_activation(network, activation):
    net = QNetwork((4, 42, 42), 5, network, dueling=True)
    convs = [m for m in net.torso[0] if isinstance(m, torch.nn.Conv2d)]
    after_convs = {type(m).__name__ for m in net.torso[0] if not isinstance(m, torch.nn.Conv2d)}
    assert [tuple(c.weight.shape) for c in convs] == [(32, 4, 3, 3)] + [(32, 32, 3, 3)] * 3
    assert after_convs == {activation, "Flatten"}
    # A small-relu checkpoint's weights fit the ELU torso and back: only the name differs.
    other = QNetwork((4, 42, 42), 5, "small" if network == "small-relu" else "small-relu", True)
    other.load_state_dict(net.state_dict())
    assert net(torch.zeros(2, 4, 42, 42, dtype=torch.uint8)).shape == (2, 5)


@pytest.mark.parametrize(
    "variant",
    [
        {"double": False},
        {"double": True, "dueling": True, "n_step": 3},
        {"double": True, "prioritized": True},
        {"double": True, "prioritized": True, "learner_thread": True},
    ],
    ids=["dqn", "ddqn-dueling-3step", "ddqn-prioritized", "ddqn-prioritized-learner-thread"],
)
def test_dqn_learns_the_chain(tmp_path, variant):
    config = DQNConfig(
        network="mlp",
        gamma=0.9,
        learning_rate=1e-3,
        batch_size=32,
        replay_size=4_000,
        burn_in=200,
        learn_every=1,
        target_sync_every=100,
        epsilon_schedule="three_phase",
        epsilon_start=1.0,
        epsilon_end=0.05,
        epsilon_anneal=1_500,
        num_envs=2,
        worker_processes=False,
        torch_threads=1,
        **variant,
    )
    run = RunConfig(seed=1, frames=3_000, device="cpu", runs_dir=str(tmp_path), progress=False)
    run_dir = train(
        run, EnvConfig(actions="lnr", frame_stack=1), config, envs_fn=lambda s: chain_envs(2, s)
    )
    policy = load_policy(run_dir)
    env = ChainEnv()
    for goal in (0, 1):
        obs, _ = env.reset(options={"goal": goal})
        for _ in range(env.length // 2):
            obs, reward, terminated, _, _ = env.step(int(policy.act(obs[None])[0]))
        assert terminated and reward == 1.0, f"the greedy policy should walk to goal {goal}"
    # The same through `evaluate`, with the policy's env swapped for the chain.
    policy.make_env = lambda config, seed: EpisodeStatistics(ChainEnv())
    report = evaluate(policy, episodes=6, seed=0)
    assert report["clear_rate"] == 1.0
    assert report["mean_frames_to_clear"] == report["mean_game_time_to_clear"] == 3


class MarkEverySecondEpisode(gym.Wrapper):
    """Marks every second finished episode as a snapshot start, as `ResetFromOwnSnapshots`
    does for episodes it started from a snapshot."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.finished = 0

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if "mario_episode" in info:
            info["mario_episode"]["snapshot_start"] = self.finished % 2 == 1
            self.finished += 1
        return obs, reward, terminated, truncated, info


def test_stored_rewards_are_scaled_and_snapshot_starts_stay_out_of_the_episode_log(tmp_path):
    config = DQNConfig(
        network="mlp",
        replay_size=2_000,
        burn_in=50,
        reward_scale=0.25,
        num_envs=1,
        worker_processes=False,
        torch_threads=1,
    )
    run = RunConfig(
        seed=0, frames=600, device="cpu", runs_dir=str(tmp_path), progress=False, save_replay=True
    )

    def marked_chain(seed):
        envs = SyncVectorEnv(
            [lambda: MarkEverySecondEpisode(EpisodeStatistics(ChainEnv()))],
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
        envs.reset(seed=seed)
        return envs

    run_dir = train(run, EnvConfig(actions="lnr", frame_stack=1), config, envs_fn=marked_chain)
    replay = torch.load(run_dir / "replay_600.pt", weights_only=True)
    stored = replay["rewards"][replay["has_transition"]]
    assert set(np.unique(stored)) == {0.0, 0.25}, "the chain pays 0 or 1, stored x0.25"
    with open(run_dir / "episodes.csv") as log:
        rows = list(csv.DictReader(log))
    # Episodes 0, 2, 4, ... started at the real start; the replay holds every episode.
    assert len(rows) >= 5
    assert len(rows) == (replay_episodes(replay) + 1) // 2


def replay_episodes(replay) -> int:
    """Episodes that ended inside the replay (terminated or truncated transitions)."""
    ended = (replay["terminated"] | replay["truncated"]) & replay["has_transition"]
    return int(ended.sum())


def test_env_groups_of_workers_train_the_same_network_on_the_emulator(tmp_path):
    """Two groups of worker processes, stepped in turn, against one: the same transitions,
    updates and greedy actions. Closing after the last step drops the step sent ahead of
    it without gymnasium's warning about a pending call."""
    env_config = EnvConfig(
        level="1-1", actions="right_only", resize=(42, 42), noop_max=8, sticky_probability=0.25
    )
    agent = DQNConfig(
        network="small-relu",
        n_step=3,
        batch_size=8,
        replay_size=2_000,
        burn_in=60,
        learn_every=2,
        target_sync_every=100,
        epsilon_schedule="three_phase",
        epsilon_end=0.2,
        epsilon_anneal=200,
        num_envs=4,
        torch_threads=1,
    )
    checkpoints = []
    for groups in (1, 2):
        run = RunConfig(seed=4, frames=1_600, device="cpu", runs_dir=str(tmp_path / str(groups)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_dir = train(
                replace(run, progress=False), env_config, replace(agent, env_groups=groups)
            )
        assert not [w for w in caught if "pending call" in str(w.message)]
        checkpoints.append(load_checkpoint(run_dir))
    one, two = checkpoints
    assert one["counters"] == two["counters"] and one["counters"]["updates"] > 100
    for name, tensor in one["model_state"].items():
        assert torch.equal(tensor, two["model_state"][name]), name


@pytest.mark.parametrize("groups", [1, 2])
def test_env_groups_keep_the_unpipelined_loops_order(tmp_path, monkeypatch, groups):
    """The step sent ahead changes when work is done, not what it sees: step t's updates
    sample the replay before step t is stored, and step t+1 acts after them, as in the loop
    act t, step t, learn, store t."""
    events: list[str] = []
    for owner, name, event in (
        (DQNLearner, "update", "update"),
        (FrameReplay, "add", "add"),
        (DQNTrainer, "_choose", "act"),
    ):
        original = getattr(owner, name)

        def logged(*args, _original=original, _event=event, **kwargs):
            # An act is logged once per env it chooses for (the groups' acts add up).
            events.extend([_event] * (len(args[2]) if _event == "act" else 1))
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, name, logged)
    num_envs, burn_in = 2, 6
    config = DQNConfig(
        network="mlp",
        batch_size=4,
        replay_size=400,
        burn_in=burn_in,
        learn_every=1,
        num_envs=num_envs,
        env_groups=groups,
        worker_processes=False,
        torch_threads=1,
    )
    run = RunConfig(seed=0, frames=40, device="cpu", runs_dir=str(tmp_path), progress=False)
    envs = [chain_envs(num_envs // groups, 0) for _ in range(groups)]
    train(run, EnvConfig(actions="lnr", frame_stack=1), config, envs_fn=lambda seed: envs)

    def updates_owed(steps: int) -> int:  # by `steps` agent steps (learn_every 1)
        return max(0, steps * num_envs - burn_in)

    # The replay's view: step t's updates, then step t stored.
    stored = events.count("add")
    expected: list[str] = []
    for t in range(stored):
        expected += ["update"] * (updates_owed(t + 1) - updates_owed(t)) + ["add"]
    assert [event for event in events if event != "act"] == expected
    assert stored > 10 and events.count("update") > 10
    # The network's view: each step's acts (one per env) come after the updates of the
    # steps before it; the last step acted is the one sent ahead of the end.
    acts = [i for i, event in enumerate(events) if event == "act"]
    assert len(acts) == (stored + 1) * num_envs
    for t in range(stored + 1):
        step_acts = acts[t * num_envs : (t + 1) * num_envs]
        assert {events[:i].count("update") for i in step_acts} == {updates_owed(t)}, t


def test_env_groups_are_refused_with_ray_actors():
    run = RunConfig(ray="local", device="cpu")
    with pytest.raises(ValueError, match="env_groups: Ray actors step their own envs"):
        DQNTrainer(run, EnvConfig(), DQNConfig(num_envs=2, env_groups=2), torch.device("cpu"))


def test_snapshot_starts_wrap_each_training_env():
    config = DQNConfig(
        snapshot_start_probability=0.5, snapshot_pool=7, num_envs=2, worker_processes=False
    )
    [envs] = make_envs(EnvConfig(), config, seed=0)
    try:
        assert all(isinstance(env, ResetFromOwnSnapshots) for env in envs.envs)
        assert [env.pool.maxlen for env in envs.envs] == [7, 7]
        assert envs.envs[0].pool is not envs.envs[1].pool, "each env keeps its own pool"
    finally:
        envs.close()
    groups = make_envs(
        EnvConfig(), DQNConfig(snapshot_start_probability=0.5, num_envs=2, env_groups=2), seed=0
    )
    try:  # the worker-process path, which dqn-fast takes
        assert [group.get_attr("probability") for group in groups] == [(0.5,), (0.5,)]
    finally:
        for group in groups:
            group.close()
    [plain] = make_envs(EnvConfig(), DQNConfig(worker_processes=False), seed=0)
    try:
        assert not isinstance(plain.envs[0], ResetFromOwnSnapshots)
    finally:
        plain.close()


def test_the_learner_steps_once_and_writes_the_td_errors_back_as_priorities():
    from mario_rl.agents.dqn import DQNLearner
    from mario_rl.replay import PrioritizedFrameReplay

    config = DQNConfig(
        network="mlp", double=False, n_step=1, gamma=0.5, batch_size=8, prioritized=True,
        priority_alpha=0.6, priority_beta_start=0.4, target_sync_every=10,
    )  # fmt: skip
    learner = DQNLearner((4,), 2, config, torch.device("cpu"))
    replay = PrioritizedFrameReplay(64, (4,), 1, obs_dtype=np.float32, seed=0, alpha=0.6)
    rng = np.random.default_rng(0)
    replay.start(np.array([0]), rng.random((1, 4), np.float32))
    for step in range(20):
        replay.add(
            np.array([step % 2]), np.array([1.0]), rng.random((1, 4), np.float32),
            np.array([False]), np.array([False]),
        )  # fmt: skip
    online, target = copy.deepcopy(learner.online), copy.deepcopy(learner.target)
    real_sample, drawn = replay.sample, []
    replay.sample = lambda *args: drawn.append(real_sample(*args)) or drawn[-1]

    learner.update(replay, used=0.5)
    (batch,) = drawn
    # By hand, from the networks before the step: y = r + 0.5 max_a Q_target(s', a).
    with torch.no_grad():
        y = batch.returns + 0.5 * target(batch.next_obs).max(1).values
        td = y - online(batch.obs).gather(1, batch.actions[:, None]).squeeze(1)
    expected = (np.abs(td.numpy().astype(np.float64)) + replay.eps) ** 0.6
    np.testing.assert_allclose(replay.priorities.get(batch.indices), expected, rtol=1e-5)
    assert {int(s["step"]) for s in learner.optimizer.state_dict()["state"].values()} == {1}
    before_after = zip(online.parameters(), learner.online.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in before_after)
    target_kept = zip(target.parameters(), learner.target.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in target_kept)
    learner.sync_target()
    for a, b in zip(learner.online.parameters(), learner.target.parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_learner_anneals_the_importance_sampling_beta_to_1_over_the_budget():
    from mario_rl.agents.dqn import DQNLearner
    from mario_rl.replay import PrioritizedFrameReplay

    config = DQNConfig(
        network="mlp", batch_size=4, prioritized=True, priority_beta_start=0.4,
        target_sync_every=0,
    )  # fmt: skip
    learner = DQNLearner((2,), 2, config, torch.device("cpu"))
    replay = PrioritizedFrameReplay(16, (2,), 1, obs_dtype=np.float32, seed=0)
    replay.start(np.array([0]), np.zeros((1, 2), np.float32))
    for _ in range(6):
        replay.add(np.array([0]), np.array([1.0]), np.ones((1, 2), np.float32),
                   np.array([False]), np.array([False]))  # fmt: skip
    real_sample, betas = replay.sample, []
    replay.sample = lambda *args: betas.append(args[3]) or real_sample(*args)
    for used in (0.0, 0.5, 1.0):
        learner.update(replay, used=used)
    # beta = 0.4 + (1 - 0.4) * used: 0.4 at the start, 0.7 halfway, 1 at the end.
    assert betas == pytest.approx([0.4, 0.7, 1.0])
