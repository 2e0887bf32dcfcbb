"""benchmarks/bench_train.py: how sampled stacks are split into parts, the run's fps, and CPU
time per frame by process."""

import os

import pytest
from repo_scripts import load_script

bench_train = load_script("benchmarks/bench_train.py")

WORKER = 'process 2:"python -c from multiprocessing.forkserver import main";'
TRAINER = 'process 1:"python -m mario_rl train";'


def test_each_stack_goes_to_the_part_of_its_innermost_known_frame(tmp_path):
    """Frames as py-spy writes them (`Class.function (path:line)`), as seen in a real
    profile of ppo-fast."""
    worker_loop = "_async_worker (gymnasium/vector/async_vector_env.py:700);"
    skip = worker_loop + "MaxPoolSkipFrames.step (mario_rl/env/wrappers.py:54);"
    stacks = {
        WORKER + skip + "NESEnv._frame_advance (nes_py/nes_env.py:203)": 10,
        WORKER + skip + "ResizeObservation.observation (mario_rl/env/wrappers.py:210)": 4,
        WORKER
        + "_async_worker (gymnasium/vector/async_vector_env.py:700);"
        + "Connection._recv (multiprocessing/connection.py:395)": 2,
        # The learner waiting on its workers goes through env/vector.py: workers, not pipeline.
        TRAINER
        + "MarioVectorEnv.step_wait (mario_rl/env/vector.py:52);"
        + "Connection._recv (multiprocessing/connection.py:395)": 1,
        TRAINER
        + "PPOTrainer.step (mario_rl/agents/ppo/trainer.py:110);"
        + "PPOAgent.update (mario_rl/agents/ppo/agent.py:150);"
        + "Conv2d._conv_forward (torch/nn/modules/conv.py:560)": 2,
        TRAINER
        + "RolloutCollector.collect (mario_rl/agents/ppo/rollout.py:140);"
        + "act (mario_rl/agents/ppo/rollout.py:33);"
        + "Conv2d._conv_forward (torch/nn/modules/conv.py:560)": 1,
    }
    profile = tmp_path / "profile.txt"
    profile.write_text("".join(f"{stack} {count}\n" for stack, count in stacks.items()))
    assert bench_train.time_split(profile) == {
        "emulator": 0.5,
        "env pipeline": 0.2,
        "workers: pipes, shared memory, waiting": 0.15,
        "learner update": 0.1,
        "acting: inference, storing steps": 0.05,
    }


def test_cpu_per_frame_splits_the_trainer_from_its_workers_over_the_window():
    # (time, {pid: cumulative CPU seconds}): trainer 10, workers 11 and 12; worker 13
    # appears late (not in both samples used: left out); at 112 the workers have exited.
    samples = [
        (100.0, {10: 1.0, 11: 0.5, 12: 0.5}),
        (101.0, {10: 1.5, 11: 1.0, 12: 1.0}),
        (110.0, {10: 4.0, 11: 9.0, 12: 9.5, 13: 3.0}),
        (112.0, {10: 4.5}),
    ]
    # The samples at 100 and 110 (the last at or before each end), scaled to the window.
    split = bench_train.cpu_per_frame(samples, trainer=10, window=(100.5, 110.5), frames=1000)
    assert split["trainer_ms"] == pytest.approx((4.0 - 1.0) * 10 / 10)
    assert split["others_ms"] == pytest.approx((9.0 - 0.5) + (9.5 - 0.5))
    scaled = bench_train.cpu_per_frame(samples, trainer=10, window=(100.0, 105.0), frames=1000)
    assert scaled["trainer_ms"] == pytest.approx((1.5 - 1.0) * 5 / 1)
    assert bench_train.cpu_per_frame(samples, trainer=10, window=(99.0, 99.5), frames=10) == {}


def test_process_cpu_seconds_sees_this_process_and_a_child():
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        seen = bench_train.process_cpu_seconds(os.getpid())
        assert os.getpid() in seen and child.pid in seen
        assert seen[os.getpid()] > 0
    finally:
        child.kill()
        child.wait()
