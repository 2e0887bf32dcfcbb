"""How sure a PPO policy is of its greedy action, step by step, where it plays greedily.

Evaluation plays the greedy action; training draws each action from the policy. This plays
a few greedy episodes under evaluation's settings (sticky actions, no-op starts) and at
every step reads the policy's distribution: its entropy, and the probability it puts on
the action taken. Where that is often well under 1, the policy training samples is a
noisier agent than the one evaluation measures:

    python benchmarks/campaign/policy_entropy.py models/8-3 --seeds 30000 30001 30002
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from mario_rl.agents import load_policy


def greedy_probabilities(
    agent: Path, seeds: list[int], sticky: float = 0.25, noop_max: int = 30, max_steps: int = 5000
) -> np.ndarray:
    """Each step's action distribution (steps x actions) over greedy episodes, one per
    seed, under sticky actions and no-op starts."""
    policy = load_policy(agent)
    if policy.probabilities is None:
        raise SystemExit(f"{agent}: a {policy.algo} agent has no action distribution to read")
    env = policy.make_env(replace(policy.env_config, sticky_probability=sticky, noop_max=noop_max))
    rows = []
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            for _ in range(max_steps):
                probabilities = policy.probabilities(obs[None])[0]
                rows.append(probabilities)
                obs, _, terminated, truncated, _ = env.step(int(probabilities.argmax()))
                if terminated or truncated:
                    break
    finally:
        env.close()
    return np.array(rows)


def summary(probabilities: np.ndarray) -> str:
    """Entropy and the greedy action's probability, as one line."""
    entropy = -(probabilities * np.log(np.clip(probabilities, 1e-12, None))).sum(axis=1)
    greedy = probabilities.max(axis=1)
    return (
        f"{len(probabilities)} steps: mean entropy {entropy.mean():.2f} nats (uniform "
        f"{np.log(probabilities.shape[1]):.2f}); greedy action's probability median "
        f"{np.median(greedy):.2f}, under 0.9 at {(greedy < 0.9).mean():.0%} of steps, "
        f"under 0.6 at {(greedy < 0.6).mean():.0%}"
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("agent", type=Path, help="a PPO checkpoint, run directory or models/L")
    parser.add_argument("--seeds", type=int, nargs="+", default=[30000, 30001, 30002])
    parser.add_argument("--sticky", type=float, default=0.25, help="default 0.25, as evaluated")
    parser.add_argument("--noop-max", type=int, default=30)
    args = parser.parse_args(argv)
    agent = args.agent
    if agent.is_dir() and (agent / "model.pt").is_file():
        agent = agent / "model.pt"
    line = f"{args.agent}: " + summary(
        greedy_probabilities(agent, args.seeds, args.sticky, args.noop_max)
    )
    print(line)
    return line


if __name__ == "__main__":
    main()
