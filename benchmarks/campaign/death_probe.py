"""Where an agent always dies at one place: is the way past rare, or has its policy stopped
looking for it?

Plays one evaluation episode of a checkpoint (greedy, sticky actions and no-op starts as
`mario-rl eval` has them) to its end, then, from the emulator state `--back` steps before
that end, plays `--tries` continuations of each kind, every one with sticky actions on its
own seed, until each dies, clears or runs `--steps` steps:

- `greedy`: the policy's preferred action (what evaluation does);
- `sampled`: actions drawn from the policy's distribution (what training does);
- `random`: a uniformly random action of its set, held for 1 to 8 steps;
- `scripted` (without sticky actions, so each is one fixed input): every running jump of
  the form right+B held k steps (k 0-19), then right+A+B held m steps (m 2-15), then
  right+B; 280 continuations, whatever `--tries` says, and those that got past counted
  by k and by m (when a jump starts and how long A is held decide where it lands). Set
  aside when the action set lacks those two.

It reports for each kind how many got `--past` pixels beyond where the episode ended, how
many cleared, and the furthest x. Random continuations that get past where the sampled
policy does not point at a policy that stopped exploring (entropy spent); none getting past
points at a way that random play rarely finds (a precise jump), or at none at all; no
scripted jump getting past says the start is past saving for such jumps (the run-up or the
take-off is already lost). Probing at several `--back` depths finds how early the failure
is decided.

`--policy` prints instead, step by step along the episode, the policy's preferred action,
its probability and the policy's entropy (nats), and the share of steps under
`--entropy-under` nats: where the policy is sure of itself and where it still hesitates.

    python benchmarks/campaign/death_probe.py runs/campaign/levels/1-3/<run> --seed 0
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable

import numpy as np
import torch

from mario_rl.agents import load_policy
from mario_rl.cli.args import (
    add_one_episode_arguments,
    non_negative_int,
    positive_float,
    positive_int,
)
from mario_rl.env.actions import action_set
from mario_rl.env.wrappers import START_FRAMES, START_LAST_ACTION
from mario_rl.evaluate import eval_env_config

KINDS = ("greedy", "sampled", "random", "scripted")
RUN, JUMP = ("right", "B"), ("right", "A", "B")
SCRIPTED = [(run, jump) for run in range(20) for jump in range(2, 16)]
"""The scripted kind's (steps of RUN, then steps of JUMP) pairs."""


def cleared(info: dict) -> bool:
    """Whether an episode's last step left the level (the flag, a warp; a castle loop is
    a failure)."""
    return info.get("exit") not in (None, "loop")


def scripted_breakdown(passed: list[tuple[int, int]]) -> list[str]:
    """The scripted jumps that got past, counted by their steps of RUN first and by their
    steps of JUMP held, each out of how many were tried (none: no lines)."""
    if not passed:
        return []
    lines = []
    for name, index in (("right+B first", 0), ("right+A+B held", 1)):
        tried = Counter(script[index] for script in SCRIPTED)
        got_past = Counter(script[index] for script in passed)
        counts = ", ".join(f"{steps}: {n}/{tried[steps]}" for steps, n in sorted(got_past.items()))
        lines.append(f"past by steps of {name}: {counts}")
    return lines


def print_policy(
    along: list[tuple[int, int, float, float]],
    info: dict,
    seed: int,
    under: float,
    actions: str,
) -> None:
    """The policy step by step along an episode, and the share of steps under `under` nats."""
    buttons = action_set(actions)
    end = "cleared" if cleared(info) else f"ended at x {info['x_pos']}"
    print(f"seed {seed}: the episode {end} after {len(along)} steps")
    print("  step      x  preferred action      p  entropy (nats)")
    for step, (x, action, p, entropy) in enumerate(along):
        name = "+".join(buttons[action])
        print(f"  {step:4d} {x:6d}  {name:<16s} {p:6.3f} {entropy:8.3f}")
    share = sum(entropy < under for *_, entropy in along) / len(along)
    print(f"  steps under {under} nats: {share:.0%}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_one_episode_arguments(parser)
    parser.add_argument(
        "--max-stuck-steps",
        type=positive_int,
        default=1000,
        help="steps without progress that end an episode, as the campaign's checks have it",
    )
    parser.add_argument(
        "--back", type=positive_int, default=30, help="steps before the end to start from"
    )
    parser.add_argument(
        "--tries", type=positive_int, default=100, help="continuations of each kind"
    )
    parser.add_argument(
        "--steps", type=positive_int, default=150, help="steps each continuation may run"
    )
    parser.add_argument(
        "--past", type=non_negative_int, default=64, help="pixels beyond the end that count"
    )
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument(
        "--policy",
        action="store_true",
        help="print the policy along the episode (preferred action, its probability, the "
        "entropy) instead of probing",
    )
    parser.add_argument(
        "--entropy-under", type=positive_float, default=0.5, help="nats, for --policy"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    policy = load_policy(args.agent)
    if args.policy and policy.probabilities is None:
        parser.error("--policy: this agent gives no action probabilities (PPO does)")
    policy.rng = np.random.default_rng(args.seed)  # the sampled kind's draws

    def env_with(noop_max: int, sticky: float):
        config = eval_env_config(
            policy.env_config, args.level, noop_max, args.max_stuck_steps, sticky
        )
        return policy.make_env(config)

    env = env_with(args.noop_max, args.sticky)
    try:
        stacked_frames = env.get_wrapper_attr("stacked_frames")
    except AttributeError:  # a pipeline without a frame stack (the symbolic agent's)
        stacked_frames = None
    obs, info = env.reset(seed=args.seed)
    # Each step's start as a death start has it: the emulator, the frames stacked and the
    # action taken into it (held by sticky actions, shown by the last-action strip).
    states, last_action, terminated, truncated = [], None, False, False
    along: list[tuple[int, int, float, float]] = []  # x, preferred action, its p, entropy
    while not (terminated or truncated):
        frames = stacked_frames() if stacked_frames else None
        options = {"snapshot": env.unwrapped.snapshot(), START_FRAMES: frames}
        states.append(({**options, START_LAST_ACTION: last_action}, info["x_pos"]))
        if args.policy:
            p = policy.probabilities(obs[None])[0]
            entropy = float(-(p * np.log(np.clip(p, 1e-12, 1.0))).sum())
            along.append((info["x_pos"], int(p.argmax()), float(p.max()), entropy))
        last_action = int(policy.act(obs[None])[0])
        obs, _, terminated, truncated, info = env.step(last_action)
    if args.policy:
        print_policy(along, info, args.seed, args.entropy_under, policy.env_config.actions)
        return
    if cleared(info):
        print(f"seed {args.seed}: the episode cleared; nothing to probe")
        return
    end_x = info["x_pos"]
    start, start_x = states[max(0, len(states) - args.back)]
    how = "died" if terminated else "was cut"
    print(
        f"seed {args.seed}: the episode {how} at x {end_x} after {len(states)} steps; "
        f"{args.tries} continuations of each kind from {min(args.back, len(states))} steps "
        f"before (x {start_x}), counted past x {end_x + args.past}"
    )

    # No no-op start after a snapshot: the continuation starts where the episode was.
    probe, exact = env_with(0, args.sticky), env_with(0, 0.0)
    buttons = action_set(policy.env_config.actions)
    rng = np.random.default_rng(args.seed)
    held = {"action": 0, "left": 0}

    def random_action(_obs: np.ndarray) -> int:
        if held["left"] == 0:
            held["action"] = int(rng.integers(policy.num_actions))
            held["left"] = int(rng.integers(1, 9))
        held["left"] -= 1
        return held["action"]

    def policy_action(sample: bool) -> Callable[[np.ndarray], int]:
        def act(observation: np.ndarray) -> int:
            policy.set_sampling(sample)
            return int(policy.act(observation[None])[0])

        return act

    script: list[int] = []

    def scripted_action(_obs: np.ndarray) -> int:
        return script.pop(0) if script else buttons.index(RUN)

    choose = {
        "greedy": policy_action(False),
        "sampled": policy_action(True),
        "random": random_action,
        "scripted": scripted_action,
    }
    for kind in args.kinds:
        if kind == "sampled" and policy.probabilities is None:
            print(f"  {kind:<8} (a greedy-only agent: skipped)")
            continue
        if kind == "scripted" and not {RUN, JUMP} <= set(buttons):
            print(f"  {kind:<8} (no right+B and right+A+B in the action set: skipped)")
            continue
        env_kind = exact if kind == "scripted" else probe
        tries = len(SCRIPTED) if kind == "scripted" else args.tries
        passed = clears = 0
        furthest = []
        passed_scripts: list[tuple[int, int]] = []  # the scripted kind's (RUN, JUMP) steps
        for attempt in range(tries):
            obs, info = env_kind.reset(seed=10_000 + attempt, options=start)
            held["left"], best = 0, info["x_pos"]
            if kind == "scripted":
                run, jump = SCRIPTED[attempt]
                script[:] = [buttons.index(RUN)] * run + [buttons.index(JUMP)] * jump
            for _ in range(args.steps):
                obs, _, terminated, truncated, info = env_kind.step(choose[kind](obs))
                best = max(best, info["x_pos"])
                if terminated or truncated:
                    break
            got_past = best > end_x + args.past
            passed += got_past
            if kind == "scripted" and got_past:
                passed_scripts.append(SCRIPTED[attempt])
            clears += cleared(info)
            furthest.append(best)
        print(
            f"  {kind:<8} past {passed:3d}/{tries}, cleared {clears:3d}, "
            f"furthest x median {int(np.median(furthest))}, max {max(furthest)}"
        )
        for line in scripted_breakdown(passed_scripts):
            print(f"           {line}")


if __name__ == "__main__":
    main()
