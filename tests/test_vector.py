"""make_vector_env against single envs, autoreset, frame counting, a dead worker."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mario_rl.env.pipeline import EnvConfig, make_env, measure_obs_stats
from mario_rl.env.vector import (
    FrameCounter,
    WorkerDiedError,
    make_vector_env,
    make_vector_env_groups,
)

# Short episodes so autoresets happen within a few hundred steps.
CONFIG = EnvConfig(actions="right_only", noop_max=8, sticky_probability=0.2, no_progress_steps=15)


def test_vector_env_equals_single_envs_under_the_same_seeds():
    num_envs = 2
    envs = make_vector_env(num_envs, CONFIG, seed=11)
    singles = [make_env(CONFIG, seed=11 + i) for i in range(num_envs)]
    try:
        obs, info = envs.reset(seed=11)
        counter = FrameCounter(num_envs)
        counter.start(info)
        single_frames = 0
        for i, env in enumerate(singles):
            single_obs, _ = env.reset(seed=11 + i)
            assert np.array_equal(obs[i], single_obs)
        assert obs.dtype == np.uint8 and obs.shape == (2, 4, 84, 84)
        rng = np.random.default_rng(0)
        autoresets = 0
        for _ in range(150):
            actions = rng.integers(0, 5, num_envs)
            obs, rewards, terminated, truncated, info = envs.step(actions)
            counter.update(info)
            for i, env in enumerate(singles):
                s_obs, s_reward, s_term, s_trunc, s_info = env.step(actions[i])
                assert (s_reward, s_term, s_trunc) == (rewards[i], terminated[i], truncated[i])
                if s_term or s_trunc:
                    autoresets += 1
                    assert info["_final_obs"][i]
                    assert np.array_equal(info["final_obs"][i], s_obs)
                    assert (
                        info["final_info"]["mario_episode"]["max_x"][i]
                        == s_info["mario_episode"]["max_x"]
                    )
                    single_frames += s_info["frames"]
                    s_obs, _ = env.reset()
                assert np.array_equal(obs[i], s_obs)
        assert autoresets >= 2
        single_frames += sum(env.unwrapped.frames for env in singles)
        assert counter.total == single_frames
    finally:
        envs.close()
        for env in singles:
            env.close()


def test_a_dead_worker_raises_a_clear_error_not_a_hang():
    envs = make_vector_env(2, CONFIG, seed=0)
    victim = envs.processes[1]
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(timeout=30)
    with pytest.raises(WorkerDiedError, match=r"worker 1 \(pid \d+, exit code -9\) died during"):
        envs.step(np.zeros(2, np.int64))
    # The surviving worker is shut down with it: no process outlives the error.
    assert not any(process.is_alive() for process in envs.processes)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_envs: expected a positive integer, got 0"):
        make_vector_env(0, CONFIG)
    with pytest.raises(ValueError, match="context: expected one of"):
        make_vector_env(1, CONFIG, context="threads")


def test_env_groups_are_seeded_as_one_vector_env_and_must_divide_the_envs():
    with pytest.raises(ValueError, match="groups: expected a divisor of num_envs=3"):
        make_vector_env_groups(3, 2, CONFIG)
    groups = make_vector_env_groups(4, 2, CONFIG, seed=7)
    envs = make_vector_env(4, CONFIG, seed=7)
    try:
        assert [group.num_envs for group in groups] == [2, 2]
        together = np.concatenate(
            [group.reset(seed=7 + 2 * g)[0] for g, group in enumerate(groups)]
        )
        assert np.array_equal(together, envs.reset(seed=7)[0])
    finally:
        envs.close()
        for group in groups:
            group.close()


def test_frame_counter_counts_groups_of_columns_as_one_step():
    whole, parts = FrameCounter(4), FrameCounter(4)
    whole.start({"frames": np.array([1, 2, 3, 4])})
    parts.start({"frames": np.array([1, 2])}, slice(0, 2))
    parts.start({"frames": np.array([3, 4])}, slice(2, 4))
    # Env 3's episode ends: 6 frames of the old one, and the new one has spent 1 already.
    ended = {
        "frames": np.array([5, 6, 7, 1]),
        "_final_info": np.array([False, False, False, True]),
        "final_info": {"frames": np.array([0, 0, 0, 6])},
    }
    assert whole.update(ended) == 4 + 4 + 4 + 3
    assert parts.update({"frames": np.array([5, 6])}, slice(0, 2)) == 8
    assert (
        parts.update(
            {k: v[2:] for k, v in ended.items() if k != "final_info"}
            | {"final_info": {"frames": np.array([0, 6])}},
            slice(2, 4),
        )
        == 7
    )
    assert whole.total == parts.total == 10 + 15


def test_normalising_workers_share_one_measurement():
    config = EnvConfig(actions="right_only", frame_stack=1, resize=(42, 42), normalize_moves=30)
    stats = measure_obs_stats(config, seed=3)
    assert stats.mean.shape == (42, 42) and stats.std > 0
    envs = make_vector_env(2, config, seed=3)
    single = make_env(config, seed=3, obs_stats=stats)
    try:
        obs, _ = envs.reset(seed=3)
        single_obs, _ = single.reset(seed=3)
        assert obs.dtype == np.float32
        assert np.allclose(obs[0], single_obs) and np.allclose(obs[1], single_obs)
    finally:
        envs.close()
        single.close()


def test_a_worker_dying_between_step_async_and_step_wait_is_a_clear_error():
    """The overlapped path (DQN and PPO collect while learning) is guarded too."""
    envs = make_vector_env(2, CONFIG, seed=0)
    envs.step_async(np.zeros(2, np.int64))
    victim = envs.processes[0]
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(timeout=30)
    with pytest.raises(WorkerDiedError, match=r"worker 0 \(pid \d+, exit code -9\)"):
        envs.step_wait()
        envs.step(np.zeros(2, np.int64))  # the kill may land after the answer was sent
    assert not any(process.is_alive() for process in envs.processes)


def test_a_frozen_worker_is_an_error_after_the_timeout_not_a_hang():
    envs = make_vector_env(2, CONFIG, seed=0)
    envs.worker_timeout = 1.0  # both workers answered already: the spaces check
    victim = envs.processes[1]
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        with pytest.raises(WorkerDiedError, match="did not answer a step within 1 s"):
            envs.step(np.zeros(2, np.int64))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim.pid, signal.SIGCONT)
        victim.join(timeout=30)
    assert not any(process.is_alive() for process in envs.processes)


def test_workers_leave_ctrl_c_to_the_parent():
    """Ctrl-C goes to the whole process group: a worker that died of it would leave the
    parent's clean shutdown broken pipes (a BrokenPipeError traceback after the save)."""
    # The default handler, or SIG_IGN when the tests run as a background job.
    parents_handler = signal.getsignal(signal.SIGINT)
    envs = make_vector_env(2, CONFIG, seed=0)
    try:
        for process in envs.processes:
            ignored = int(_status_field(process.pid, "SigIgn"), 16)
            assert ignored & (1 << (signal.SIGINT - 1)), "the worker would die of Ctrl-C"
            os.kill(process.pid, signal.SIGINT)
        envs.step(np.zeros(2, np.int64))  # both still answer
        assert all(process.is_alive() for process in envs.processes)
    finally:
        envs.close()
    # The parent keeps its own handler (it builds one env too, to read the spaces).
    assert signal.getsignal(signal.SIGINT) is parents_handler


def _status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split()[1]
    raise AssertionError(f"no {name} in /proc/{pid}/status")


def test_a_script_without_a_main_guard_is_told_so(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text(
        "from mario_rl.env.pipeline import EnvConfig\n"
        "from mario_rl.env.vector import make_vector_env\n"
        "make_vector_env(2, EnvConfig(resize=(42, 42)), seed=0).close()\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    # The parent's error; the dying workers write to the same stderr, so a line of theirs
    # (a warning) may come after it under load.
    (error,) = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("mario_rl.env.vector.WorkerDiedError")
    ]
    assert error.startswith("mario_rl.env.vector.WorkerDiedError: a worker died while starting")
    assert f"if {script} started this" in error and 'if __name__ == "__main__":' in error
