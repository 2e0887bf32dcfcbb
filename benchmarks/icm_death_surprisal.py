"""What curiosity makes of a death: the ICM's surprisal on the transition into a death,
as this project feeds it, against what a naive rollout would feed.

    python benchmarks/icm_death_surprisal.py --frames 150000 --episodes 30

The curiosity write-up warns that surprisal can reward dying: if the transition at a
death is stored as (last frame, action, first frame of the next episode), the jump to the
level's start is the least predictable thing the agent ever sees, and it pays. This
project's rollouts store the episode's own last observation instead (Gymnasium's
`final_obs`), and the episode's return is not bootstrapped past a death, so with a
reward that is never negative, dying only ends the stream of curiosity.

This script trains `curiosity-ppo` (intrinsic reward only) for `--frames`, or takes a
run directory (`--run`), then plays `--episodes` episodes with the trained policy
(sampling, as in training) and records the ICM's surprisal of:
- every ordinary transition (s, a, s');
- each death as stored here, (s, a, final observation);
- each death as a naive rollout would store it, (s, a, the next episode's first frame).
It prints the means and the share of ordinary transitions each death exceeds.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mario_rl.agents import load_policy
from mario_rl.agents.ppo.icm import ICM
from mario_rl.presets import get_preset
from mario_rl.runs import RunConfig, load_checkpoint
from mario_rl.training import train


@torch.no_grad()
def surprisal(icm: ICM, obs: np.ndarray, action: int, next_obs: np.ndarray) -> float:
    batch = torch.as_tensor(np.stack([obs]))
    next_batch = torch.as_tensor(np.stack([next_obs]))
    return float(icm.losses(batch, next_batch, torch.tensor([action])).surprisal[0])


def measure(run_dir: Path, episodes: int, seed: int) -> dict[str, object]:
    checkpoint = load_checkpoint(run_dir)
    config = checkpoint["agent_config"]
    policy = load_policy(run_dir)
    policy.set_sampling(True)
    policy.rng = np.random.default_rng(seed)
    icm = ICM(
        tuple(checkpoint["obs_shape"]),
        checkpoint["num_actions"],
        config["network"],
        config["icm_residual_blocks"],
    )
    icm.load_state_dict(checkpoint["icm_state"])
    icm.eval()
    # The training pipeline without its episode cut on no progress, so episodes end at
    # deaths (or the flag), as the question is about deaths.
    env = policy.make_env(replace(policy.env_config, no_progress_steps=0), seed)
    ordinary: list[float] = []
    as_stored: list[float] = []
    naive: list[float] = []
    pending: tuple[np.ndarray, int] | None = None  # a death's (s, a), for the naive pairing
    deaths = flags = 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        if pending is not None:
            naive.append(surprisal(icm, pending[0], pending[1], obs))
            pending = None
        while True:
            action = int(policy.act(obs[None])[0])
            next_obs, _, terminated, truncated, info = env.step(action)
            value = surprisal(icm, obs, action, next_obs)
            if terminated and not info.get("flag_get"):
                as_stored.append(value)
                pending = (obs, action)
                deaths += 1
            else:
                ordinary.append(value)
            if terminated or truncated:
                flags += bool(info.get("flag_get"))
                break
            obs = next_obs
    env.close()
    ordinary_sorted = np.sort(ordinary)

    def share_below(values: list[float]) -> float | None:
        if not values:
            return None
        ranks = np.searchsorted(ordinary_sorted, values)
        return float(np.mean(ranks / len(ordinary_sorted)))

    return {
        "run": str(run_dir),
        "frames_trained": int(checkpoint["counters"]["frames"]),
        "episodes": episodes,
        "deaths": deaths,
        "flags": flags,
        "ordinary_transitions": len(ordinary),
        "mean_surprisal_ordinary": float(np.mean(ordinary)),
        "mean_surprisal_death_as_stored": float(np.mean(as_stored)) if as_stored else None,
        "mean_surprisal_death_naive": float(np.mean(naive)) if naive else None,
        "death_as_stored_percentile": share_below(as_stored),
        "death_naive_percentile": share_below(naive),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=None, help="a curiosity-ppo run directory")
    parser.add_argument("--frames", type=int, default=150_000, help="training budget without --run")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", default="runs/icm-death")
    parser.add_argument("--out", type=Path, default=None, help="JSON of the numbers")
    args = parser.parse_args()
    if args.episodes < 2:
        parser.error(
            f"--episodes: expected at least 2 (a death pairs with the next), got {args.episodes}"
        )
    run_dir = args.run
    if run_dir is None:
        preset = get_preset("curiosity-ppo")
        run = RunConfig(seed=args.seed, frames=args.frames, runs_dir=args.runs_dir, progress=False)
        run_dir = train(run, preset.env, preset.agent, preset="curiosity-ppo")
    result = measure(run_dir, args.episodes, args.seed + 1000)
    ordinary = result["mean_surprisal_ordinary"]
    print(
        f"{result['frames_trained']:,} frames of curiosity-ppo ({run_dir}); {args.episodes} "
        f"episodes: {result['deaths']} deaths, {result['flags']} flags, "
        f"{result['ordinary_transitions']:,} other transitions"
    )
    print(f"mean surprisal, ordinary transitions: {ordinary:.4f}")
    labels = {
        "as_stored": "death as stored here (final obs)",
        "naive": "death as a naive rollout stores it (next episode's start)",
    }
    for key, label in labels.items():
        mean = result[f"mean_surprisal_death_{key}"]
        if mean is None:
            continue
        print(
            f"mean surprisal, {label}: {mean:.4f} ({mean / ordinary:.1f}x ordinary; above "
            f"{result[f'death_{key}_percentile']:.0%} of ordinary transitions on average)"
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
