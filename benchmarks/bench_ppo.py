"""PPO throughput in one run: rollout collection and update time, by input size and workers.

    python benchmarks/bench_ppo.py --workers 2 4 --rollouts 3

For each input (84x84 with the Nature CNN, 42x42 with the small torso; otherwise the
`ppo-fast` setting: RIGHT_ONLY, skip 4, stack 4) and each worker count, it prints:
emulator frames/s of the same vector env under random actions (the ceiling); frames/s of
rollout collection with the policy acting, and its ratio to the ceiling; the learner
process's CPU time per vector step while collecting (acting and copying); one PPO update
per rollout in wall-clock seconds and in the learner's CPU seconds; and frames/s over
collect + update. CPU seconds do not grow when other processes take the cores, so they
are the figures to compare on a shared machine; wall-clock figures are what a run sees.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import torch

from mario_rl.agents.ppo import PPOAgent, PPOConfig, RolloutCollector
from mario_rl.bench import vector_fps
from mario_rl.env.pipeline import EnvConfig
from mario_rl.env.vector import make_vector_env
from mario_rl.presets import get_preset

INPUTS = {"84x84 nature": ((84, 84), "nature"), "42x42 small": ((42, 42), "small")}


def measure(env_config: EnvConfig, config: PPOConfig, rollouts: int, seed: int) -> dict[str, float]:
    """Collection and update timings over `rollouts` rollouts, after one warm-up rollout."""
    envs = make_vector_env(config.num_envs, env_config, seed=seed)
    try:
        torch.manual_seed(seed)
        agent = PPOAgent(config, envs.single_observation_space, envs.single_action_space.n)
        collector = RolloutCollector(envs, agent, config.num_steps, seed=seed)
        agent.update(collector.collect()[0])
        wall = {"collect": 0.0, "update": 0.0}
        cpu = {"collect": 0.0, "update": 0.0}
        frames = 0
        for _ in range(rollouts):
            frames_before = collector.frames.total
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            rollout, _ = collector.collect()
            wall["collect"] += time.perf_counter() - wall_start
            cpu["collect"] += time.process_time() - cpu_start
            frames += collector.frames.total - frames_before
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            agent.update(rollout)
            wall["update"] += time.perf_counter() - wall_start
            cpu["update"] += time.process_time() - cpu_start
    finally:
        envs.close()
    return {
        "collect_fps": frames / wall["collect"],
        "act_cpu_ms": 1000 * cpu["collect"] / (rollouts * config.num_steps),
        "update_s": wall["update"] / rollouts,
        "update_cpu_s": cpu["update"] / rollouts,
        "overall_fps": frames / (wall["collect"] + wall["update"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--rollouts", type=int, default=3, help="timed rollouts per case")
    parser.add_argument("--steps", type=int, default=128, help="agent steps per env per rollout")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}; rollout: workers x {args.steps} steps")
    print(f"load average (1, 5, 15 min) at the start: {load_average()}")
    print(
        f"{'input':<14}{'workers':>8}{'random f/s':>12}{'collect f/s':>13}{'ratio':>7}"
        f"{'act cpu ms':>12}{'update s':>10}{'update cpu s':>14}{'overall f/s':>13}"
    )
    for name, (resize, network) in INPUTS.items():
        for workers in args.workers:
            fast_env, fast = get_preset("ppo-fast").env, get_preset("ppo-fast").agent
            env_config = replace(fast_env, resize=resize)
            config = replace(fast, network=network, num_envs=workers, num_steps=args.steps)
            # The env alone under random actions, over about the same frames per worker.
            frames_per_worker = args.steps * env_config.frame_skip
            ceiling = vector_fps(env_config, workers, frames_per_worker, args.seed).fps
            result = measure(env_config, config, args.rollouts, args.seed)
            print(
                f"{name:<14}{workers:>8}{ceiling:>12.0f}{result['collect_fps']:>13.0f}"
                f"{result['collect_fps'] / ceiling:>7.2f}{result['act_cpu_ms']:>12.2f}"
                f"{result['update_s']:>10.2f}{result['update_cpu_s']:>14.2f}"
                f"{result['overall_fps']:>13.0f}",
                flush=True,
            )
    print(f"load average (1, 5, 15 min) at the end: {load_average()}")


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
