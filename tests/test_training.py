"""The one training runner: its schedule on a hand-made trainer, and Ctrl-C then resume
behaving alike for the three agents (DQN, PPO, CS229) that train through it."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from dqn_chain import chain_envs

from mario_rl import training
from mario_rl.agents.cs229 import CS229Config, CS229Trainer
from mario_rl.agents.dqn import DQNConfig, DQNTrainer
from mario_rl.agents.ppo import PPOAgent, PPOTrainer, RolloutCollector
from mario_rl.env.pipeline import EnvConfig
from mario_rl.presets import get_preset
from mario_rl.runs import MetricsLogger, RunConfig, Step, list_checkpoints, load_checkpoint
from mario_rl.stopping import Terminated, stop_signals_interrupt


def rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "episodes.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def episode(x: int, snapshot: bool = False) -> dict[str, Any]:
    stats = {"return": 1.0, "length": 10, "frames": 40, "max_x": x, "flag": False}
    return {**stats, "time_left": 300, "score": 0, "snapshot_start": snapshot}


@dataclass(frozen=True)
class CountingConfig:
    """A stand-in agent: 100 frames a step, an episode every step, every third one from a
    snapshot."""

    frames_per_step: int = 100


class CountingTrainer:
    """A trainer whose every number is known in advance."""

    algo = "counting"

    def __init__(self, run, env_config, config, device, checkpoint=None) -> None:
        self.env_config, self.config = env_config, config
        self.frames = 0 if checkpoint is None else checkpoint["counters"]["frames"]
        self.steps = 0 if checkpoint is None else checkpoint["counters"]["steps"]
        self.closed = False
        CountingTrainer.last_made = self

    @staticmethod
    def identity(env_config, config):
        return "counting", env_config.actions, "none"

    def start(self, run_dir, logger) -> None:
        pass

    def done(self, budget) -> bool:
        return budget.spent(self.frames)

    def step(self, budget) -> Step:
        self.frames += self.config.frames_per_step
        self.steps += 1
        return Step(
            [(self.frames, episode(self.steps, snapshot=self.steps % 3 == 0))],
            last=self.done(budget),
            scalars={"charts/steps": self.steps} if self.steps % 2 == 0 else {},
            postfix={"steps": self.steps},
        )

    def checkpoint(self, run_dir) -> dict[str, Any]:
        return {
            "algo": "counting",
            "module": __name__,
            "action_set": self.env_config.actions,
            "network": "none",
            "env_config": self.env_config.to_dict(),
            "model_state": {"steps": torch.tensor(self.steps)},
            "counters": {"frames": self.frames, "steps": self.steps},
        }

    def after_checkpoint(self, run_dir) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setitem(training.TRAINERS, CountingConfig, CountingTrainer)


def counting_run(tmp_path: Path, frames: int) -> RunConfig:
    return RunConfig(
        frames=frames, runs_dir=str(tmp_path), checkpoint_every=250, keep_checkpoints=20,
        progress=False, device="cpu",
    )  # fmt: skip


def test_the_runner_checkpoints_on_the_grid_logs_real_starts_and_closes(tmp_path, counting):
    run_dir = training.train(counting_run(tmp_path, 1_000), EnvConfig(), CountingConfig())
    # Steps end at 100, 200, ...: the first at or past 250, 500, 750, and the last at 1,000.
    assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == [
        "frames_300.pt", "frames_500.pt", "frames_800.pt", "frames_1000.pt",
    ]  # fmt: skip
    # 10 steps, one episode each; steps 3, 6, 9 started from snapshots and are left out.
    assert [int(r["max_x"]) for r in rows(run_dir)] == [1, 2, 4, 5, 7, 8, 10]
    assert [int(r["frames"]) for r in rows(run_dir)] == [100, 200, 400, 500, 700, 800, 1000]
    assert CountingTrainer.last_made.closed
    config = json.loads((run_dir / "config.json").read_text())
    assert config["algo"] == "counting" and config["agent"] == {"frames_per_step": 100}


def test_the_runner_saves_on_ctrl_c_and_resume_continues_the_log(tmp_path, counting, monkeypatch):
    real_step = CountingTrainer.step

    def interrupted(self, budget):
        if self.steps == 4:
            raise KeyboardInterrupt
        return real_step(self, budget)

    monkeypatch.setattr(CountingTrainer, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        training.train(counting_run(tmp_path, 1_000), EnvConfig(), CountingConfig())
    (run_dir,) = tmp_path.iterdir()
    assert CountingTrainer.last_made.closed
    assert load_checkpoint(run_dir)["counters"] == {"frames": 400, "steps": 4}

    monkeypatch.setattr(CountingTrainer, "step", real_step)
    training.train(counting_run(tmp_path, 700), EnvConfig(), CountingConfig(), resume=run_dir)
    assert load_checkpoint(run_dir)["counters"] == {"frames": 700, "steps": 7}
    assert [int(r["episode"]) for r in rows(run_dir)] == [1, 2, 3, 4, 5]
    assert [int(r["max_x"]) for r in rows(run_dir)] == [1, 2, 4, 5, 7]


def test_a_stop_noted_during_a_step_ends_the_run_after_logging_it(tmp_path, counting, monkeypatch):
    real_step = CountingTrainer.step

    def noted_a_stop(self, budget):
        step = real_step(self, budget)
        return dataclasses.replace(step, stop=signal.SIGTERM) if self.steps == 4 else step

    monkeypatch.setattr(CountingTrainer, "step", noted_a_stop)
    with pytest.raises(Terminated):
        training.train(counting_run(tmp_path, 1_000), EnvConfig(), CountingConfig())
    (run_dir,) = tmp_path.iterdir()
    # The checkpoint holds the fourth step whole, and the log its episode (x 4).
    assert load_checkpoint(run_dir)["counters"] == {"frames": 400, "steps": 4}
    assert [int(r["max_x"]) for r in rows(run_dir)] == [1, 2, 4]
    assert CountingTrainer.last_made.closed


@pytest.mark.usefixtures("stop_signals_at_their_defaults")
def test_a_kill_while_a_step_is_logged_waits_for_the_whole_step(tmp_path, counting, monkeypatch):
    real_log_episode = MetricsLogger.log_episode

    def log_episode(self, frames, episode):
        if episode["max_x"] == 4:  # `kill PID` as the fourth step's episode is logged
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)
        real_log_episode(self, frames, episode)

    monkeypatch.setattr(MetricsLogger, "log_episode", log_episode)
    with pytest.raises(Terminated), stop_signals_interrupt():
        training.train(counting_run(tmp_path, 1_000), EnvConfig(), CountingConfig())
    (run_dir,) = tmp_path.iterdir()
    assert load_checkpoint(run_dir)["counters"] == {"frames": 400, "steps": 4}
    assert [int(r["max_x"]) for r in rows(run_dir)] == [1, 2, 4]


@pytest.mark.usefixtures("stop_signals_at_their_defaults")
def test_ppo_finishes_its_update_before_a_stop(tmp_path, monkeypatch):
    _, env_config, config, options, _ = ppo_setting()
    # Truncated at every step without a new best x: episodes end in every rollout.
    env_config = dataclasses.replace(env_config, no_progress_steps=1)
    run = RunConfig(
        frames=10**6, runs_dir=str(tmp_path), checkpoint_every=10**9, progress=False,
        device="cpu",
    )  # fmt: skip
    real_update, updates = PPOAgent.update, []

    def update_killed_midway(self, rollout, progress=0.0):
        updates.append(1)
        if len(updates) == 2:  # `kill PID` while the second update is being made
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)
        return real_update(self, rollout, progress=progress)

    real_collect, collected = RolloutCollector.collect, []

    def collect(self):
        result = real_collect(self)
        collected.append(self.frames.total)
        return result

    monkeypatch.setattr(PPOAgent, "update", update_killed_midway)
    monkeypatch.setattr(RolloutCollector, "collect", collect)
    with pytest.raises(Terminated), stop_signals_interrupt():
        training.train(run, env_config, config, **options)
    (run_dir,) = tmp_path.iterdir()
    # The checkpoint holds the two rollouts collected and both updates made on them, and
    # the log every episode they ended (without the deferral: the second rollout's frames
    # with one update made, and its episodes lost). ppo-fast collects a third in the
    # background (overlap) while it updates on the second.
    assert len(collected) >= 2
    counters = load_checkpoint(run_dir)["counters"]
    assert counters == {"frames": collected[1], "updates": 2}
    logged = [int(r["frames"]) for r in rows(run_dir)]
    assert logged and max(logged) > collected[0]


def test_a_run_resumed_at_its_budget_takes_no_step(tmp_path, counting):
    run_dir = training.train(counting_run(tmp_path, 300), EnvConfig(), CountingConfig())
    training.train(counting_run(tmp_path, 300), EnvConfig(), CountingConfig(), resume=run_dir)
    assert CountingTrainer.last_made.steps == 3 and len(rows(run_dir)) == 2


# -- the three agents: Ctrl-C keeps a checkpoint, resume continues it ------------------------


def dqn_setting():
    config = DQNConfig(
        network="mlp", replay_size=500, burn_in=20, learn_every=2, target_sync_every=20,
        num_envs=2, worker_processes=False, torch_threads=1,
    )  # fmt: skip
    options = {"envs_fn": lambda seed: chain_envs(2, seed)}
    return DQNTrainer, EnvConfig(actions="lnr", frame_stack=1), config, options, 300


def ppo_setting():
    env_config, config = get_preset("ppo-fast").env, get_preset("ppo-fast").agent
    config = dataclasses.replace(config, num_envs=2, num_steps=8, num_minibatches=2, num_epochs=1)
    return PPOTrainer, dataclasses.replace(env_config, no_progress_steps=5), config, {}, 300


def cs229_setting():
    config = CS229Config(eval_every=1, eval_episodes=1, noop_max=5, no_progress_decisions=8)
    return CS229Trainer, EnvConfig(level="1-1"), config, {}, 100_000


@pytest.mark.parametrize("setting", [dqn_setting, ppo_setting, cs229_setting])
def test_ctrl_c_then_resume_is_the_same_for_every_agent(setting, tmp_path, monkeypatch):
    trainer_class, env_config, config, options, frames = setting()
    run = RunConfig(
        seed=2, frames=frames, runs_dir=str(tmp_path), checkpoint_every=10**9,
        progress=False, device="cpu",
    )  # fmt: skip
    real_step, calls = trainer_class.step, []

    def interrupted(self, budget):
        calls.append(self.frames)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(self, budget)

    monkeypatch.setattr(trainer_class, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        training.train(run, env_config, config, **options)
    (run_dir,) = tmp_path.iterdir()
    # The Ctrl-C checkpoint holds what the two finished steps trained on.
    interrupted_at = load_checkpoint(run_dir)["counters"]
    assert interrupted_at["frames"] == calls[2] > 0
    logged = rows(run_dir)
    assert all(int(r["frames"]) <= interrupted_at["frames"] for r in logged)

    monkeypatch.setattr(trainer_class, "step", real_step)
    later = dataclasses.replace(run, frames=interrupted_at["frames"] + 1)
    if isinstance(config, CS229Config):  # the tabular agent's own budget is in episodes
        config = dataclasses.replace(config, episodes=interrupted_at["episodes"] + 1)
    assert training.train(later, env_config, config, resume=run_dir, **options) == run_dir
    resumed = load_checkpoint(run_dir)["counters"]
    assert resumed["frames"] > interrupted_at["frames"]
    for name, value in interrupted_at.items():
        if name != "frames":
            assert resumed[name] >= value, name
    assert rows(run_dir)[: len(logged)] == logged
    assert [int(r["episode"]) for r in rows(run_dir)] == list(range(1, len(rows(run_dir)) + 1))


# -- warm starts: a new run from another run's networks ---------------------------------------


def network_states(trainer) -> list[dict[str, torch.Tensor]]:
    """Every copy of the network that acts or learns: DQN's online and target networks,
    PPO's learner and (with overlap) the copy that collects rollouts."""
    if isinstance(trainer, DQNTrainer):
        nets = [trainer.learner.online, trainer.learner.target]
    else:
        nets = [trainer.agent.policy] + ([trainer.acting] if trainer.acting is not None else [])
    return [{name: value.clone() for name, value in net.state_dict().items()} for net in nets]


def first_run(tmp_path, env_config, config, options, frames) -> tuple[RunConfig, dict]:
    """A short run in `tmp_path/first` to warm-start from: its RunConfig and checkpoint."""
    run = RunConfig(
        seed=2, frames=frames, runs_dir=str(tmp_path / "first"), checkpoint_every=10**9,
        progress=False, device="cpu",
    )  # fmt: skip
    return run, load_checkpoint(training.train(run, env_config, config, **options))


def record_first_step_states(trainer_class, monkeypatch) -> list[dict[str, torch.Tensor]]:
    """A list that the trainer's first `step` fills with `network_states`: the networks a
    run starts from, after any warm start."""
    real_step, first_states = trainer_class.step, []

    def step(self, budget):
        if not first_states:
            first_states.extend(network_states(self))
        return real_step(self, budget)

    monkeypatch.setattr(trainer_class, "step", step)
    return first_states


@pytest.mark.parametrize("setting", [dqn_setting, ppo_setting])
def test_init_from_starts_a_new_run_with_the_checkpoints_networks(setting, tmp_path, monkeypatch):
    trainer_class, env_config, config, options, frames = setting()
    run, source = first_run(tmp_path, env_config, config, options, frames)
    first_states = record_first_step_states(trainer_class, monkeypatch)
    second = dataclasses.replace(run, seed=3, runs_dir=str(tmp_path / "second"))
    run_dir = training.train(second, env_config, config, init_from=source["path"], **options)

    assert len(first_states) == 2  # DQN: online and target; ppo_setting overlaps: two too
    for state in first_states:
        assert state.keys() == source["model_state"].keys()
        for name, value in source["model_state"].items():
            assert torch.equal(state[name], value), name
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["init_from"] == {
        "checkpoint": source["path"],
        "frames": source["counters"]["frames"],
    }
    # Its own counters start at 0: the budget is this run's frames, not the two runs' sum.
    second_end = load_checkpoint(run_dir)
    assert 0 < second_end["counters"]["frames"] < 2 * frames
    # A third stage counts the frames of both before it.
    third = dataclasses.replace(second, runs_dir=str(tmp_path / "third"))
    third_dir = training.train(third, env_config, config, init_from=run_dir, **options)
    assert json.loads((third_dir / "config.json").read_text())["init_from"] == {
        "checkpoint": second_end["path"],
        "frames": source["counters"]["frames"] + second_end["counters"]["frames"],
    }


def test_a_ppo_warm_start_into_more_actions_keeps_the_old_rows_and_adds_their_mean(
    tmp_path, monkeypatch
):
    _, env_config, config, options, frames = ppo_setting()
    assert env_config.actions == "right_only"
    run, source = first_run(tmp_path, env_config, config, options, frames)
    first_states = record_first_step_states(PPOTrainer, monkeypatch)
    simple = dataclasses.replace(env_config, actions="simple")  # right_only's 5, A, left
    second = dataclasses.replace(run, seed=3, runs_dir=str(tmp_path / "second"))
    run_dir = training.train(second, simple, config, init_from=source["path"], **options)

    old = source["model_state"]
    for state in first_states:  # the learner and the copy that acts
        for name, value in old.items():
            if not name.startswith("policy_head."):
                assert torch.equal(state[name], value), name
        weight, bias = state["policy_head.weight"], state["policy_head.bias"]
        assert weight.shape[0] == bias.shape[0] == 7
        assert torch.equal(weight[:5], old["policy_head.weight"])
        assert torch.equal(bias[:5], old["policy_head.bias"])
        for new in (5, 6):
            assert torch.allclose(weight[new], old["policy_head.weight"].mean(0))
            assert torch.allclose(bias[new], old["policy_head.bias"].mean())
    end = load_checkpoint(run_dir)
    assert (end["action_set"], end["num_actions"]) == ("simple", 7)
    assert (
        json.loads((run_dir / "config.json").read_text())["init_from"]["checkpoint"]
        == (source["path"])
    )
    # Back to fewer actions, or to a set that reorders them: refused before any run starts.
    for other in ("right_only", "lnr"):
        made_for = "simple" if other == "right_only" else "right_only"
        start = run_dir if other == "right_only" else source["path"]
        with pytest.raises(ValueError, match=f"action set {made_for} .* action set {other}"):
            training.train(
                dataclasses.replace(run, runs_dir=str(tmp_path / other)),
                dataclasses.replace(env_config, actions=other),
                config,
                init_from=start,
                **options,
            )
        assert not (tmp_path / other).exists()


def test_a_warm_start_into_more_actions_is_refused_with_the_icm(tmp_path):
    _, env_config, config, options, frames = ppo_setting()
    icm = dataclasses.replace(config, reward_mode="mixed", intrinsic_coef=0.1)
    run, source = first_run(tmp_path, env_config, icm, options, frames)
    simple = dataclasses.replace(env_config, actions="simple")
    second = dataclasses.replace(run, runs_dir=str(tmp_path / "second"))
    with pytest.raises(ValueError, match=r"has 5 actions and this run 7; .* without the ICM"):
        training.train(second, simple, icm, init_from=source["path"], **options)
    assert not (tmp_path / "second").exists()


def test_only_a_trainer_that_grows_its_policy_starts_from_fewer_actions():
    made = {"algo": "ddqn", "action_set": "right_only", "network": "nature", "path": "c.pt"}
    simple = EnvConfig(actions="simple")
    dqn = DQNConfig(network="nature", double=True)
    assert DQNTrainer.identity(simple, dqn) == ("ddqn", "simple", "nature")
    with pytest.raises(ValueError, match=r"DQNTrainer cannot .* fewer actions \(right_only"):
        training.check_warm_start_identity(made, DQNTrainer, simple, dqn)
    ppo_config = dataclasses.replace(ppo_setting()[2], network="nature")
    ppo = {**made, "algo": "ppo"}
    training.check_warm_start_identity(ppo, PPOTrainer, simple, ppo_config)
    complex_actions = EnvConfig(actions="complex")
    training.check_warm_start_identity(ppo, PPOTrainer, complex_actions, ppo_config)


def test_a_new_action_never_outranks_the_old_and_gets_their_geometric_mean():
    from mario_rl.agents.ppo.networks import ActorCritic, with_more_actions

    torch.manual_seed(0)
    five = ActorCritic((4, 42, 42), 5, "nature")
    seven = ActorCritic((4, 42, 42), 7, "nature")
    seven.load_state_dict(with_more_actions(five.state_dict(), 2))
    obs = torch.randint(0, 256, (8, 4, 42, 42), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(seven(obs)[0][:, :5], five(obs)[0])
        assert torch.equal(seven(obs)[1], five(obs)[1])
        # The head alone, on features that make the old policy sure, then unsure.
        features = torch.zeros(2, five.policy_head.in_features)
        features[0, 0], features[1, :3] = 20.0, torch.tensor([1.0, 1.0, 0.5])
        five.policy_head.weight.zero_()
        five.policy_head.weight[:, :5] = torch.eye(5)
        five.policy_head.bias.zero_()
        seven.load_state_dict(with_more_actions(five.state_dict(), 2))
        old, new = five.policy_head(features), seven.policy_head(features)
    assert torch.equal(new[:, :5], old)
    assert torch.equal(new.argmax(1), old.argmax(1))
    probs = new.softmax(1)
    geometric_mean = probs[:, :5].log().mean(1).exp()
    assert torch.allclose(probs[:, 5], geometric_mean) and torch.allclose(probs[:, 6], probs[:, 5])
    assert probs[:, 5].min() < 0.01 < probs[:, 5].max()  # small where sure, not everywhere


def test_init_from_refuses_another_algo_and_agents_without_networks(tmp_path):
    _, env_config, config, options, frames = dqn_setting()
    run = RunConfig(
        seed=2, frames=frames, runs_dir=str(tmp_path), checkpoint_every=10**9,
        progress=False, device="cpu",
    )  # fmt: skip
    dqn_run = training.train(run, env_config, config, **options)
    _, ppo_env, ppo_config, _, _ = ppo_setting()
    with pytest.raises(ValueError, match=r"was made for algo ddqn.*this run uses algo ppo"):
        training.train(run, ppo_env, ppo_config, init_from=dqn_run)
    _, cs229_env, cs229_config, _, _ = cs229_setting()
    with pytest.raises(ValueError, match="CS229Trainer cannot start from a checkpoint"):
        training.train(run, cs229_env, cs229_config, init_from=dqn_run)
    with pytest.raises(ValueError, match="expected one of them, got both"):
        training.train(run, env_config, config, resume=dqn_run, init_from=dqn_run, **options)
    other_stack = dataclasses.replace(env_config, frame_stack=2)
    with pytest.raises(
        ValueError, match=r"its networks saw other observations \(frame_stack 1 there, 2 here\)"
    ):
        training.train(run, other_stack, config, init_from=dqn_run, **options)
    assert len(list(tmp_path.iterdir())) == 1  # no run directory for the refused ones
