"""Where an agent gets stuck, can its own action set get it out?

Plays one evaluation episode of a checkpoint (greedy, sticky actions and no-op starts as
`mario-rl eval` has them) until Mario's x has not grown for `--stuck-steps` steps, saves the
screen there, then, from that moment's emulator state, lets go of the controller until
Mario stands (`--settle` steps of the no-op, so that a held A is released and a jump can
start), holds each action of the agent's action set for `--hold` steps, and reports how far
right and how high Mario got, and how each hold ended. An action set that cannot move him
on from there is a dead end for the agent, whatever it learns (the level campaign's 4-2,
docs/campaign.md).

    python benchmarks/stuck_probe.py runs/campaign/levels/4-2/<run> --seed 0 --png stuck.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import torch

from mario_rl.agents import load_policy
from mario_rl.cli.args import (
    add_one_episode_arguments,
    non_negative_int,
    positive_int,
)
from mario_rl.env.actions import action_set, noop_index
from mario_rl.evaluate import eval_env_config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_one_episode_arguments(parser)
    parser.add_argument(
        "--stuck-steps",
        type=positive_int,
        default=50,
        help="steps without a new best x that mean stuck",
    )
    parser.add_argument("--hold", type=positive_int, default=16, help="steps each action is held")
    parser.add_argument(
        "--settle",
        type=non_negative_int,
        default=8,
        help="no-op steps first: buttons released, landed",
    )
    parser.add_argument("--png", type=Path, default=None, help="save the stuck screen here")
    parser.add_argument(
        "--step-back",
        type=positive_int,
        default=None,
        metavar="STEPS",
        help="also try, from the settled stall, 1..STEPS steps of left, then each action "
        "with A held 2, 4, ... --hold steps, then right for --hold steps (action sets with "
        "left): does a step back get him out?",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    policy = load_policy(args.agent)
    config = eval_env_config(policy.env_config, args.level, args.noop_max, 10**6, args.sticky)
    env = policy.make_env(config)
    obs, info = env.reset(seed=args.seed)
    # As training's no-progress cut: the best x per area (a pipe's area restarts x).
    best_x, area, since_best, steps = info["x_pos"], info.get("area"), 0, 0
    while since_best < args.stuck_steps:
        obs, _, terminated, truncated, info = env.step(int(policy.act(obs[None])[0]))
        steps += 1
        if info["x_pos"] > best_x or info.get("area") != area:
            best_x, area, since_best = info["x_pos"], info.get("area"), 0
        else:
            since_best += 1
        if terminated or truncated:
            print(f"seed {args.seed}: the episode ended at x {info['x_pos']} without a stall")
            return
    print(
        f"seed {args.seed}: stuck after {steps} steps at x {info['x_pos']}, y {info['y_pos']} "
        f"(best x {best_x}, {args.stuck_steps} steps without a new best in its area)"
    )
    names = ["+".join(buttons) or "NOOP" for buttons in action_set(policy.env_config.actions)]
    if policy.probabilities is not None:
        chances = policy.probabilities(obs[None])[0]
        pairs = zip(names, chances, strict=True)
        print("the policy there: " + ", ".join(f"{name} {p:.2f}" for name, p in pairs))
    if args.png:
        cv2.imwrite(str(args.png), env.unwrapped.screen_rgb()[..., ::-1])
        print(f"its screen: {args.png}")

    # From the stall, without sticky actions: what each action held does.
    probe = policy.make_env(eval_env_config(policy.env_config, args.level, 0, 10**6, 0.0))
    probe.reset(seed=args.seed)
    noop = noop_index(policy.env_config.actions)
    stall = env.unwrapped.snapshot()

    def settled() -> dict | None:
        """The stall's state after `--settle` no-ops, or None if the episode ended in them."""
        _, start_info = probe.reset(options={"snapshot": stall})
        for _ in range(args.settle):
            _, _, terminated, truncated, start_info = probe.step(noop)
            if terminated or truncated:
                return None
        return start_info

    start = settled()
    if start is None:
        print(f"the episode ended within {args.settle} no-ops of the stall: try --settle")
        return
    x, y = start["x_pos"], start["y_pos"]
    print(
        f"each action held {args.hold} steps after {args.settle} no-ops (Mario at x {x}, "
        f"y {y}): furthest x, highest y, how the hold ended"
    )
    for index, name in enumerate(names):
        settled()
        xs, ys, ending = [], [], f"held {args.hold} steps"
        for step in range(1, args.hold + 1):
            _, _, terminated, truncated, step_info = probe.step(index)
            xs.append(step_info["x_pos"])
            ys.append(step_info["y_pos"])
            if terminated or truncated:
                exit_taken = step_info.get("exit")
                how = f"exit {exit_taken}" if exit_taken else "died" if terminated else "cut"
                ending = f"{how} at step {step}"
                break
        print(
            f"  {index:2d} {name:<20} x {max(xs):5d} ({max(xs) - x:+d}), "
            f"y {max(ys):4d} ({max(ys) - y:+d}), {ending}"
        )

    if args.step_back is not None:
        if ("left",) not in action_set(policy.env_config.actions):
            print(f"--step-back: the action set {policy.env_config.actions} has no left")
            return
        left, right = names.index("left"), names.index("right")
        jumps = [index for index, name in enumerate(names) if "A" in name.split("+")]
        scripts = [
            [left] * back + [jump] * held + [right] * args.hold
            for back in range(1, args.step_back + 1)
            for jump in jumps
            for held in range(2, args.hold + 1, 2)
        ]
        passed = []
        for script in scripts:
            settled()
            for action in script:
                _, _, terminated, truncated, step_info = probe.step(action)
                if step_info["x_pos"] > x + 32:  # past the stall by two tiles
                    passed.append(script)
                    break
                if terminated or truncated:
                    break
        print(
            f"a step back: {len(passed)} of {len(scripts)} scripts (1-{args.step_back} steps "
            f"left, then {', '.join(names[j] for j in jumps)} held 2-{args.hold} steps, then "
            f"right) got more than 32 pixels past x {x}"
        )
        for script in passed[:5]:
            back = script.count(left)
            print(f"  {back} left, then {names[script[back]]} x{script[back:].count(script[back])}")


if __name__ == "__main__":
    main()
