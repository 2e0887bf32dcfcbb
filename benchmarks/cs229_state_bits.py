"""Does packing the CS229 state's enemy bits into a nearest range lose anything?

    python benchmarks/cs229_state_bits.py --episodes 20

The report's state has 24 enemy bits: for each of 8 directions, an enemy in the near
(3x3 tiles), mid (7x7) and far (11x11) window. `mario_rl.env.ram.pack_symbolic` keeps one
nearest range (0-3) per direction, 16 bits. Read as nested windows (the mid window holds
the near one), the nearest range determines all 24 bits, and nothing is lost by
construction. Read as rings (mid = 7x7 less 3x3), the 24 bits can also say "and another
enemy further out in the same direction", which the packing drops.

This script measures how often that happens on the states Mario actually meets: it plays
1-1 with the bundled agent (which crosses the whole level, under sticky actions) and with
right-biased random buttons held 6 frames (the CS229 agent's decisions), reads
`enemy_ranges` and `enemy_rings` at every decision, and counts:
- decisions where some direction has two or more rings occupied (the packing drops bits);
- distinct enemy codes under each reading, and how many distinct rings codes map to one
  nearest code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from mario_rl.agents import load_policy
from mario_rl.bundled import bundled_checkpoint
from mario_rl.env.core import MarioEnv
from mario_rl.env.ram import enemy_ranges, enemy_rings
from mario_rl.evaluate import EVAL_STICKY, eval_env_config, policy_actor

FRAMES_PER_DECISION = 6


class Tally:
    """Counts over decisions: ring codes with more than the nearest, distinct codes."""

    def __init__(self) -> None:
        self.decisions = 0
        self.with_enemy = 0
        self.lossy = 0
        self.rings_by_nearest: dict[bytes, set[bytes]] = defaultdict(set)

    def add(self, ram: np.ndarray) -> None:
        nearest, rings = enemy_ranges(ram), enemy_rings(ram)
        self.decisions += 1
        self.with_enemy += bool(nearest.any())
        self.lossy += bool((rings.sum(axis=1) > 1).any())
        self.rings_by_nearest[nearest.tobytes()].add(np.packbits(rings).tobytes())

    def summary(self) -> dict[str, float | int]:
        ring_codes = sum(len(codes) for codes in self.rings_by_nearest.values())
        return {
            "decisions": self.decisions,
            "decisions_with_an_enemy_in_view": self.with_enemy,
            "decisions_where_rings_say_more": self.lossy,
            "share_where_rings_say_more": self.lossy / max(self.decisions, 1),
            "distinct_nearest_codes": len(self.rings_by_nearest),
            "distinct_ring_codes": ring_codes,
        }


def play_bundled(level: str, episodes: int, seed: int) -> Tally:
    """The bundled agent, greedy, under sticky actions; RAM read every 6th frame."""
    policy = load_policy(bundled_checkpoint(level))
    config = eval_env_config(policy.env_config, level, 30, 250, EVAL_STICKY)
    env = policy.make_env(config, seed)
    act = policy_actor(policy)
    tally, cleared = Tally(), 0
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        next_read = info["frames"]
        while True:
            obs, _, terminated, truncated, info = env.step(act(obs))
            if info["frames"] >= next_read:
                tally.add(env.unwrapped.ram)
                next_read += FRAMES_PER_DECISION
            if terminated or truncated:
                cleared += bool(info["flag_get"])
                break
    env.close()
    print(f"bundled {level} agent: {cleared}/{episodes} cleared", file=sys.stderr)
    return tally


def play_random(level: str, episodes: int, seed: int) -> Tally:
    """Random CS229 buttons, right-moving ones three times as likely, held 6 frames."""
    env = MarioEnv(level, "cs229", obs_type="gray")
    rng = np.random.default_rng(seed)
    # cs229 actions 4-7 move right: weight them 3, the other eight 1.
    weights = np.array([1, 1, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1], float)
    weights /= weights.sum()
    tally = Tally()
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        done = False
        while not done:
            tally.add(env.ram)
            action = int(rng.choice(12, p=weights))
            for _ in range(FRAMES_PER_DECISION):
                _, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
                if done:
                    break
    env.close()
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--level", default="1-1")
    parser.add_argument("--episodes", type=int, default=20, help="per player")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON of the counts")
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error(f"--episodes: expected a positive integer, got {args.episodes}")
    results = {
        "bundled agent": play_bundled(args.level, args.episodes, args.seed).summary(),
        "random, right-biased": play_random(args.level, args.episodes, args.seed).summary(),
    }
    for player, summary in results.items():
        print(
            f"{player}: {summary['decisions']:,} decisions, "
            f"{summary['decisions_with_an_enemy_in_view']:,} with an enemy in the far window; "
            f"rings say more than the nearest range in "
            f"{summary['decisions_where_rings_say_more']:,} "
            f"({summary['share_where_rings_say_more']:.2%}); distinct enemy codes: "
            f"{summary['distinct_nearest_codes']} nearest, {summary['distinct_ring_codes']} rings"
        )
    if args.out:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
