"""PPO and DQN on Ray actors: a local Ray instance (2 CPUs, loopback only) trains through
actors, resumes, and survives an actor killed between rollouts and during one.

The actors' own code (`RolloutWorker`, `TransitionWorker`) is also tested in this
process, without Ray."""

import csv
import json
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mario_rl.agents.dqn_remote import TransitionWorker
from mario_rl.agents.ppo import PPOAgent
from mario_rl.agents.ppo.remote import RayRolloutCollector, RolloutWorker
from mario_rl.cli.main import main
from mario_rl.env.pipeline import make_env
from mario_rl.integrations import ray_cluster
from mario_rl.nets import QNetwork
from mario_rl.presets import get_preset
from mario_rl.runs import load_checkpoint

TINY = ["--num-envs", "2", "--num-steps", "16", "--num-minibatches", "2", "--num-epochs", "1"]
PRESET = get_preset("ppo-fast")
TINY_CONFIG = replace(PRESET.agent, num_envs=2, num_steps=16, num_minibatches=2, num_epochs=1)
ENV = replace(PRESET.env, level="1-1")


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


class FakeRay:
    """What `gather` uses of Ray: `get`, and the two errors of a call to a dead actor. Actor
    0's first `restarting` calls fail, as calls to an actor that Ray is restarting do."""

    class exceptions:  # as Ray names it
        class RayActorError(Exception):
            pass

        class ActorUnavailableError(Exception):
            pass

    def __init__(self, restarting: int) -> None:
        self.restarting = restarting

    def get(self, ref):
        index, attempt = ref
        if index == 0 and attempt < self.restarting:
            error = (self.exceptions.RayActorError, self.exceptions.ActorUnavailableError)
            raise error[attempt % 2]()
        return f"result {index}"


def test_gather_waits_out_an_actors_restart_and_gives_up_after_a_time(monkeypatch):
    from mario_rl.integrations import ray_cluster

    clock = [0.0]
    monkeypatch.setattr(ray_cluster.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(ray_cluster.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    attempts = {0: 0}

    def resend(index):
        attempts[index] += 1
        return (index, attempts[index])

    # Ten failed calls in a row (a slow restart): waited out, each pause longer, none lost.
    results, lost = ray_cluster.gather(FakeRay(10), {0: (0, 0), 1: (1, 0)}, resend, "rollout")
    assert results == {0: "result 0", 1: "result 1"} and lost == 10
    assert clock[0] == 0.5 + 1.0 + 2.0 + 5.0 * 7
    # An actor that never comes back: a clear error once RESTART_WAIT_S have passed.
    clock[0], attempts[0] = 0.0, 0
    with pytest.raises(RuntimeError, match="were not back within 180 s"):
        ray_cluster.gather(FakeRay(10_000), {0: (0, 0)}, resend, "rollout")
    assert ray_cluster.RESTART_WAIT_S <= clock[0] < ray_cluster.RESTART_WAIT_S + 5.0


def test_the_actor_collects_a_whole_rollout_of_its_envs_in_process():
    worker = RolloutWorker(ENV, TINY_CONFIG, num_envs=2, obs_stats=None)
    probe = make_env(ENV)
    agent = PPOAgent(TINY_CONFIG, probe.observation_space, int(probe.action_space.n))
    probe.close()
    weights = agent.policy.state_dict()
    first = worker.collect(weights, seed=7)
    second = worker.collect(weights, seed=123)  # the envs go on: the seed is not used
    assert first["fresh"] and not second["fresh"]
    assert first["obs"].shape == (16, 2, *agent.obs_shape) and first["obs"].dtype == np.uint8
    assert first["actions"].shape == (16, 2) and first["next_values"].shape == (16, 2)
    # 16 agent steps of 4 frames each per env, deaths and no-op starts aside.
    assert 100 <= first["frames"] <= 2 * 16 * 4 + 2 * 30
    # The same seed and weights give the same rollout: its actors' runs are reproducible.
    again = RolloutWorker(ENV, TINY_CONFIG, num_envs=2, obs_stats=None).collect(weights, seed=7)
    assert np.array_equal(again["actions"], first["actions"])
    assert np.array_equal(again["obs"], first["obs"])


def test_ppo_trains_and_resumes_through_ray_actors(ray_local, tmp_path):
    runs = tmp_path / "runs"
    args = ["train", "--preset", "ppo-fast", *TINY, "--checkpoint-every", "500"]
    ray_args = ["--ray", "local", "--env-actors", "2", "--runs-dir", str(runs), "--quiet"]
    assert main([*args, "--frames", "600", *ray_args]) == 0
    (run,) = runs.iterdir()
    config = json.loads((run / "config.json").read_text())
    assert (config["run"]["ray"], config["run"]["env_actors"]) == ("local", 2)
    counters = load_checkpoint(run)["counters"]
    assert counters["frames"] >= 600 and counters["updates"] >= 1
    assert main(["train", "--resume", str(run), "--frames", "1200", "--quiet"]) == 0
    resumed = load_checkpoint(run)["counters"]
    assert resumed["frames"] >= 1200 and resumed["updates"] > counters["updates"]
    rows = list(csv.DictReader((run / "episodes.csv").open()))
    assert rows and all(int(row["frames"]) <= resumed["frames"] for row in rows)
    assert ray_local.is_initialized()  # the test session's instance, not the run's to stop


class TestAnActorKilled:
    """Two kills of one collector's actors: starting the actors is most of their time, so
    they share a collector (closed after them, its actors holding Ray's 2 CPUs); each test
    counts the losses of its own kill."""

    @pytest.fixture(scope="class")
    @classmethod
    def collector(cls, ray_local):
        probe = make_env(ENV)
        agent = PPOAgent(TINY_CONFIG, probe.observation_space, int(probe.action_space.n))
        probe.close()
        collector = RayRolloutCollector(
            ENV, TINY_CONFIG, agent.policy, torch.device("cpu"), 2, seed=0, obs_stats=None,
            address="local",
        )  # fmt: skip
        yield collector
        collector.close()

    @staticmethod
    def losses(collector: RayRolloutCollector) -> int:
        return collector.restarts + collector.lost_rollouts

    def test_between_rollouts_is_restarted_and_counted(self, ray_local, collector):
        rollout, _ = collector.collect()
        frames, before = collector.frames.total, self.losses(collector)
        ray_local.kill(collector.actors[0], no_restart=False)
        rollout, _ = collector.collect()
        assert rollout.actions.shape == (16, 2)
        assert collector.frames.total > frames
        # Killed while idle, it either answers the next call as a restarted actor or dies
        # under it; either way the loss is counted.
        assert self.losses(collector) >= before + 1

    def test_during_a_rollout_is_replaced_and_the_rollout_collected_again(
        self, ray_local, collector
    ):
        collector.collect()
        before = self.losses(collector)
        pid = ray_local.get(collector.actors[1].pid.remote())
        killer = threading.Timer(0.05, os.kill, (pid, signal.SIGKILL))
        killer.start()
        start = time.perf_counter()
        rollout, _ = collector.collect()
        killer.join()
        assert rollout.actions.shape == (16, 2) and time.perf_counter() - start < 120
        assert self.losses(collector) >= before + 1
        assert ray_local.get(collector.actors[1].pid.remote()) != pid


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ray", "local"], "--ray ADDRESS and --env-actors N go together"),
        (["--env-actors", "2"], "--ray ADDRESS and --env-actors N go together"),
    ],
)
def test_ray_flags_come_in_pairs(extra, message, tmp_path, capsys):
    code = main(["train", "--preset", "ppo-fast", *extra, "--runs-dir", str(tmp_path)])
    assert code == 2 and message in capsys.readouterr().err


def test_joining_ray_keeps_the_commands_sigterm_handler(monkeypatch):
    """`ray.init` installs its own SIGTERM handler (an immediate exit); `kill PID` must still
    reach the run's own, which checkpoints first."""

    class FakeRay:
        def is_initialized(self) -> bool:
            return False

        def init(self, **options) -> None:
            signal.signal(signal.SIGTERM, lambda signum, frame: None)  # as Ray's does

    monkeypatch.setattr(ray_cluster, "import_ray", FakeRay)
    before = signal.signal(signal.SIGTERM, _command_handler)
    try:
        ray_cluster.connect("local", 2)
        assert signal.getsignal(signal.SIGTERM) is _command_handler
    finally:
        signal.signal(signal.SIGTERM, before)


def _command_handler(signum: int, frame: object) -> None:
    raise AssertionError("not called")


def test_the_tabular_agent_refuses_ray_actors(tmp_path, capsys):
    args = ["train", "--algo", "tabular", "--ray", "local", "--env-actors", "2"]
    assert main([*args, "--runs-dir", str(tmp_path), "--frames", "100"]) == 2
    assert "the tabular agent steps one env here" in capsys.readouterr().err
    assert not any(Path(tmp_path).iterdir())


DQN_ENV = replace(get_preset("dqn-fast").env, level="1-1", no_progress_steps=1)
DQN_CONFIG = replace(get_preset("dqn-fast").agent, num_envs=2)


def test_the_dqn_actor_returns_its_transitions_and_where_episodes_ended():
    worker = TransitionWorker(DQN_ENV, DQN_CONFIG, num_envs=2)
    probe = make_env(DQN_ENV)
    net = QNetwork(probe.observation_space.shape, int(probe.action_space.n), "small-relu", True)
    probe.close()
    first = worker.collect(net.state_dict(), epsilon=1.0, seed=3, steps=20)
    second = worker.collect(net.state_dict(), epsilon=1.0, seed=99, steps=20)
    assert first["first_obs"].shape == (2, *net_obs_shape(first)) and second["first_obs"] is None
    assert first["actions"].shape == (20, 2) and first["next_obs"].shape[:2] == (20, 2)
    # Truncated at a step without progress (a random NOOP, say): episodes end, each with
    # its final obs.
    ended = first["terminated"] | first["truncated"] | second["terminated"] | second["truncated"]
    assert ended.any()
    for chunk in (first, second):
        ends = {
            (int(t), int(i))
            for t, i in zip(*np.nonzero(chunk["terminated"] | chunk["truncated"]), strict=True)
        }
        assert set(chunk["final_obs"]) == ends
    assert first["frames"] > 0 and len(first["episodes"]) + len(second["episodes"]) >= 1
    again = TransitionWorker(DQN_ENV, DQN_CONFIG, num_envs=2)
    repeat = again.collect(net.state_dict(), epsilon=1.0, seed=3, steps=20)
    assert np.array_equal(repeat["actions"], first["actions"])
    # A call sent again after a lost one starts new episodes, as a new actor would.
    fresh = worker.collect(net.state_dict(), epsilon=1.0, seed=3, steps=20, fresh=True)
    assert np.array_equal(fresh["first_obs"], first["first_obs"])
    assert np.array_equal(fresh["actions"], first["actions"])
    # The same actor asked again is not a new one (`RayTransitionCollector.restarts`).
    assert first["new_actor"] and repeat["new_actor"]
    assert not second["new_actor"] and not fresh["new_actor"]


IN_PROCESS_STEPS = 8
"""Vector steps per chunk of `InProcessCollector` (the Ray actors take `CHUNK_STEPS`): with
`DQN_ENV` cutting an episode at every step without progress, several episodes end in each."""


class InProcessCollector:
    """`RayTransitionCollector`'s interface over `TransitionWorker`s in this process, which
    records each `submit`."""

    def __init__(self, env_config, config, actors, seed, address):
        self.seed, self.per_actor = seed, config.num_envs // actors
        self.workers = [TransitionWorker(env_config, config, self.per_actor) for _ in range(actors)]
        self.pending, self.submits = {}, []
        self.lost_chunks = self.restarts = 0

    def submit(self, weights, epsilon, frames):
        self.submits.append(({k: v.clone() for k, v in weights.items()}, epsilon, frames))
        self.pending = {
            index: worker.collect(weights, epsilon, self.seed + frames + index, IN_PROCESS_STEPS)
            for index, worker in enumerate(self.workers)
        }

    def receive(self):
        chunks, self.pending = self.pending, {}
        self.received = [chunks[index] for index in range(len(self.workers))]
        return self.received

    def close(self):
        for worker in self.workers:
            worker.envs.close()


def test_the_dqn_learner_stores_the_actors_chunks_column_by_actor(monkeypatch):
    from mario_rl.agents import dqn_remote
    from mario_rl.agents.dqn import DQNTrainer
    from mario_rl.runs import Budget, RunConfig

    monkeypatch.setattr(dqn_remote, "RayTransitionCollector", InProcessCollector)
    config = replace(DQN_CONFIG, num_envs=4, burn_in=10_000, replay_size=1000)
    run = RunConfig(seed=5, ray="in-process", env_actors=2, progress=False)
    trainer = DQNTrainer(run, DQN_ENV, config, torch.device("cpu"))
    try:
        # Weights given after construction are the ones the first chunk acts with.
        online = trainer.learner.online.state_dict()
        start = {k: torch.full_like(v, 0.01) for k, v in online.items()}
        trainer.init_weights({"model_state": start})
        budget = Budget(frames=10**9, minutes=None)
        trainer.step(budget)
        remote = trainer.remote
        first_weights, _, first_frames = remote.submits[0]
        assert first_frames == 0
        assert all(torch.equal(first_weights[k], start[k]) for k in start)
        # The next chunk is asked for with the frames counted after this one (its seeds).
        assert remote.submits[1][2] == trainer.counters.frames > 0
        chunks = remote.received
        replay = trainer.replay
        for index, chunk in enumerate(chunks):
            for column in range(2):
                env = index * 2 + column
                # Column `env`: its first frame, then its transitions and a first frame per
                # episode that ended; the actions in the order the actor took them.
                ended = int((chunk["terminated"] | chunk["truncated"])[:, column].sum())
                assert replay.filled[env] == 1 + IN_PROCESS_STEPS + ended
                stored = replay.actions[env][replay.has_transition[env]]
                assert np.array_equal(stored, chunk["actions"][:, column])
        assert any((chunk["terminated"] | chunk["truncated"]).any() for chunk in chunks)
        assert trainer.counters.steps == IN_PROCESS_STEPS * 4
    finally:
        trainer.close()


def net_obs_shape(chunk):
    return chunk["next_obs"].shape[2:]


def test_dqn_trains_and_resumes_through_ray_actors(ray_local, tmp_path):
    runs = tmp_path / "runs"
    args = [
        "train", "--preset", "dqn-fast", "--num-envs", "2", "--burn-in", "50",
        "--replay-size", "2000", "--checkpoint-every", "1000",
        "--ray", "local", "--env-actors", "2", "--runs-dir", str(runs), "--quiet",
    ]  # fmt: skip
    assert main([*args, "--frames", "1200"]) == 0
    (run,) = runs.iterdir()
    counters = load_checkpoint(run)["counters"]
    assert counters["frames"] >= 1200 and counters["updates"] >= 1
    # Updates owed: one per learn_every agent steps after the burn-in.
    learn_every = get_preset("dqn-fast").agent.learn_every
    assert counters["updates"] == (counters["steps"] - 50) // learn_every
    assert main(["train", "--resume", str(run), "--frames", "2400", "--quiet"]) == 0
    resumed = load_checkpoint(run)["counters"]
    assert resumed["frames"] >= 2400 and resumed["updates"] > counters["updates"]
