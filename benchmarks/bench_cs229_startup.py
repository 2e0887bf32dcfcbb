"""How long the CS229 agent's env workers take to start: `--num-envs` workers built and
reset, the first time in a fresh process (the forkserver's start included), per round.

    python benchmarks/bench_cs229_startup.py --num-envs 2 --rounds 3

Each round runs in its own interpreter. Before/after comparisons run another checkout's
package in turn with this one (a checkout from before `mario_rl.env.symbolic` existed is
driven through its `mario_rl.agents.cs229` functions):

    PYTHONPATH=/tmp/before/src python benchmarks/bench_cs229_startup.py

The imports sit inside functions on purpose: a forkserver imports the parent's `__main__`
script, so an import of the agent at this file's top would load PyTorch into the workers.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def one_start(num_envs: int) -> float:
    """Seconds to build and reset `num_envs` training workers in this process."""
    from mario_rl.agents.cs229 import CS229Config

    config = CS229Config(num_envs=num_envs)
    start = time.perf_counter()
    try:
        from mario_rl.env.symbolic import close_in_turn, make_symbolic_envs_in_turn, reset_in_turn

        envs = make_symbolic_envs_in_turn(
            config.env_config("1-1"), config.symbolic(), num_envs, mode_block=config.mode_block
        )
    except ImportError:  # a checkout from before env/symbolic.py
        from mario_rl.agents import cs229

        close_in_turn, reset_in_turn = cs229.close_in_turn, cs229.reset_in_turn
        envs = cs229.make_symbolic_envs_in_turn(config.env_config("1-1"), config, training=True)
    reset_in_turn(envs, seed=0)
    seconds = time.perf_counter() - start
    close_in_turn(envs)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-envs", type=int, default=2, help="workers (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes (default 3)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(f"{one_start(args.num_envs):.2f}")
        return
    times = []
    for _ in range(args.rounds):
        command = [sys.executable, __file__, "--one", "--num-envs", str(args.num_envs)]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        times.append(float(out.split()[-1]))
        print(f"{args.num_envs} workers built and reset: {times[-1]:.2f} s", flush=True)
    print(f"mean {sum(times) / len(times):.2f} s over {len(times)} fresh processes")


if __name__ == "__main__":
    main()
