"""benchmarks/bench_train.py: how sampled stacks are split into parts, and the run's fps."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"
spec = importlib.util.spec_from_file_location("bench_train", SCRIPT)
bench_train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_train)

WORKER = 'process 2:"python -c from multiprocessing.forkserver import main";'
TRAINER = 'process 1:"python -m mario_rl train";'


def test_each_stack_goes_to_the_innermost_part_that_explains_it(tmp_path):
    profile = tmp_path / "profile.txt"
    profile.write_text(
        "\n".join(
            [
                WORKER
                + "step (mario_rl/env/wrappers.py:54);_frame_advance (nes_py/nes_env.py:203) 6",
                WORKER
                + "step (mario_rl/env/wrappers.py:59);resize (mario_rl/env/wrappers.py:210) 2",
                WORKER
                + "_worker (gymnasium/vector/async_vector_env.py:700);"
                + "_recv (multiprocessing/connection.py:395) 1",
                TRAINER
                + "step (mario_rl/agents/ppo/trainer.py:110);"
                + "update (mario_rl/agents/ppo/agent.py:150) 1",
            ]
        )
        + "\n"
    )
    assert bench_train.time_split(profile) == {
        "emulator": 0.6,
        "env pipeline": 0.2,
        "workers: pipes, shared memory, waiting": 0.1,
        "learner update": 0.1,
    }
