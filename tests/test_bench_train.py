"""benchmarks/bench_train.py: how sampled stacks are split into parts, and the run's fps."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"
spec = importlib.util.spec_from_file_location("bench_train", SCRIPT)
bench_train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_train)

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
