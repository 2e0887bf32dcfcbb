"""`mario-rl train`, `eval`, `record` and `compare`: training runs and what reads them.

Heavy modules (torch, the agents) are imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from mario_rl.arguments import non_negative_int
from mario_rl.cli import UsageError, _action_set, _level, _positive_int
from mario_rl.env.levels import parse_level
from mario_rl.outputs import writable_file, writable_folder

if TYPE_CHECKING:
    from mario_rl.agents import Policy

console = Console(width=max(Console().width, 100))
DEFAULT_TRAIN_FRAMES = 2_000_000
"""Frame budget of `train` when neither --frames nor --minutes is given."""


def _frames(text: str) -> int:
    """A frame count such as `2e6` or `500000`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of frames, got {text!r}") from None
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number of frames, got {text!r}"
        )
    return int(value)


def _number(text: str, accepts: Callable[[float], bool], expected: str) -> float:
    """`text` as a float that `accepts` takes; "expected EXPECTED, got TEXT" otherwise."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not accepts(value):  # nan fails every range, so non-numbers land here too
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, lambda v: 0 < v < math.inf, "a positive number")


def _non_negative_float(text: str) -> float:
    return _number(text, lambda v: 0 <= v < math.inf, "a number >= 0")


def probability(text: str) -> float:
    return _number(text, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


def sticky_probability(text: str) -> float:
    """A sticky-action probability: in [0, 1), as `StickyAction` takes it (0: deterministic)."""
    return _number(text, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")


# Flags of `train` that override one field of the preset: flag dest -> (config, field).
AGENT_FLAGS = {
    "lr": "learning_rate",
    "gamma": "gamma",
    "batch_size": "batch_size",
    "replay_size": "replay_size",
    "burn_in": "burn_in",
    "learn_every": "learn_every",
    "sync_every": "target_sync_every",
    "n_step": "n_step",
    "dueling": "dueling",
    "prioritized": "prioritized",
    "loss": "loss",
    "epsilon_end": "epsilon_end",
    "num_envs": "num_envs",
    "torch_threads": "torch_threads",
    "replay_on_device": "replay_on_device",
    "num_steps": "num_steps",
    "num_epochs": "num_epochs",
    "num_minibatches": "num_minibatches",
    "snapshot_starts": "snapshot_starts",
    "reward_scale": "reward_scale",
    "overlap": "overlap",
    "entropy_coef": "entropy_coef",
    "entropy_coef_end": "entropy_coef_end",
}
ENV_FLAGS = {
    "actions": "actions",
    "noop_max": "noop_max",
    "no_progress_steps": "no_progress_steps",
    "normalize_moves": "normalize_moves",
    "sticky": "sticky_probability",
    "show_last_action": "show_last_action",
}
PPO_ALGOS = ("ppo", "ppo-icm")
"""`--algo` values that train with PPO: without curiosity, or with it mixed in."""
RUN_FLAGS = {
    "checkpoint_every": "checkpoint_every",
    "keep_checkpoints": "keep_checkpoints",
    "runs_dir": "runs_dir",
}


def _given(args: argparse.Namespace, flags: dict[str, str]) -> dict[str, object]:
    return {
        field: getattr(args, dest)
        for dest, field in flags.items()
        if getattr(args, dest) is not None
    }


def _agent_overrides(args: argparse.Namespace, agent: object) -> dict[str, object]:
    """The agent flags given, as fields; a one-line error for flags this agent lacks."""
    from dataclasses import fields

    given = _given(args, AGENT_FLAGS)
    known = {f.name for f in fields(agent)}
    foreign = sorted(name for name in given if name not in known)
    if foreign:
        flags = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise UsageError(f"{flags} do(es) not apply to {type(agent).__name__}; drop them")
    return given


def _with_algo(agent: object, algo: str | None) -> object:
    """The agent with `--algo` applied: the DQN target, or PPO with or without curiosity."""
    from dataclasses import replace

    from mario_rl.agents.ppo import PPOConfig

    if algo is None:
        return agent
    if isinstance(agent, PPOConfig) != (algo in PPO_ALGOS):
        raise UsageError(
            f"--algo {algo} does not fit a {type(agent).__name__} preset; pick a preset of "
            "that family (ppo-fast or curiosity-ppo for PPO, dqn-fast for DQN)"
        )
    if isinstance(agent, PPOConfig):
        if algo == "ppo":
            return replace(agent, reward_mode="extrinsic")
        return agent if agent.uses_icm else replace(agent, reward_mode="mixed")
    return replace(agent, double=algo == "ddqn")


def cmd_train(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from mario_rl.agents import dqn, ppo
    from mario_rl.env.pipeline import EnvConfig
    from mario_rl.presets import get_preset
    from mario_rl.runs import RunConfig, RunDir

    if args.algo == "tabular":
        from mario_rl.cs229_cli import train_from_args

        run_dir = train_from_args(args)
        console.print(
            f"run saved in [bold]{run_dir}[/bold]; evaluate it with: mario-rl eval {run_dir}"
        )
        return
    budget = {"frames": args.frames, "minutes": args.minutes}
    if args.resume:
        changed = _given(args, AGENT_FLAGS | ENV_FLAGS | RUN_FLAGS)
        if changed or args.preset or args.algo or args.level or args.seed is not None:
            raise UsageError(
                "--resume continues the run with its own config.json; drop the flags that "
                "change it (only --frames, --minutes, --device, --save-replay, --quiet apply)"
            )
        saved_run = RunDir(args.resume)
        saved = saved_run.config()
        env_config = saved_run.config_section("env", EnvConfig)
        config_class = ppo.PPOConfig if saved.get("algo") in PPO_ALGOS else dqn.DQNConfig
        agent = saved_run.config_section("agent", config_class)
        run = saved_run.config_section("run", RunConfig)
        run = replace(run, **{k: v for k, v in budget.items() if v is not None})
        preset_name = saved.get("preset")
    else:
        default_preset = {"ppo": "ppo-fast", "ppo-icm": "curiosity-ppo"}.get(args.algo, "dqn-fast")
        preset = get_preset(args.preset or default_preset)
        preset_name = preset.name
        env_config = replace(preset.env, level=args.level or "1-1", **_given(args, ENV_FLAGS))
        agent = _with_algo(preset.agent, args.algo)
        agent = replace(agent, **_agent_overrides(args, agent))
        if args.frames is None and args.minutes is None:
            budget["frames"] = DEFAULT_TRAIN_FRAMES
        run = RunConfig(seed=args.seed or 0, **budget, **_given(args, RUN_FLAGS))
    run = replace(
        run,
        device=args.device or run.device,
        save_replay=args.save_replay or run.save_replay,
        progress=not args.quiet,
    )
    # Before any env starts: a run that cannot save would train for nothing.
    folder = args.resume or run.runs_dir
    writable_folder(folder, f"cannot write the run's files into {folder}")
    train = ppo.train if isinstance(agent, ppo.PPOConfig) else dqn.train
    run_dir = train(run, env_config, agent, resume=args.resume, preset=preset_name)
    console.print(f"run saved in [bold]{run_dir}[/bold]; evaluate it with: mario-rl eval {run_dir}")


def _one_inference_thread() -> None:
    """One state at a time gains nothing from more threads; they only slow the emulator."""
    import torch

    torch.set_num_threads(1)


def _policy_from_argument(args: argparse.Namespace) -> tuple[Policy, bool]:
    """The policy named by a checkpoint, run directory or level (its bundled agent).

    Also says whether it is a bundled agent, so its reports are not written into models/.
    """
    from mario_rl.agents import load_policy
    from mario_rl.bundled import resolve_agent
    from mario_rl.runs import resolve_device

    _one_inference_thread()
    path, named_level = resolve_agent(args.checkpoint, args.level or "1-1")
    policy = load_policy(path, resolve_device(args.device))
    if args.sample is not None:
        policy.set_sampling(args.sample)
    if args.level is None and named_level is not None:
        args.level = named_level
    return policy, named_level is not None


def cmd_eval(args: argparse.Namespace) -> None:
    from mario_rl.evaluate import default_report_path, evaluate, save_report, summary_line

    policy, bundled = _policy_from_argument(args)
    level = parse_level(args.level or policy.env_config.level).name
    if args.out:
        out = writable_file(args.out)
    elif bundled:  # not into models/: runs/ is where outputs go
        out = writable_file(default_report_path("runs/bundled", level))
    else:
        out = writable_file(default_report_path(policy.checkpoint_path, level))
    report = evaluate(
        policy,
        level=args.level,
        episodes=args.episodes,
        epsilon=args.epsilon,
        noop_max=args.noop_max,
        seed=args.seed,
        max_stuck_steps=args.max_stuck_steps,
        progress=not args.quiet,
        sticky=args.sticky,
        control=args.control,
    )
    path = save_report(report, out)
    console.print(summary_line(report))
    console.print(f"saved {path}")


def cmd_record(args: argparse.Namespace) -> None:
    from mario_rl.record import record

    policy, _ = _policy_from_argument(args)
    result = record(
        policy,
        writable_file(args.out),
        level=args.level,
        seed=args.seed,
        epsilon=args.epsilon,
        noop_max=args.noop_max,
        max_stuck_steps=args.max_stuck_steps,
        sticky=args.sticky,
    )
    outcome = "cleared the level" if result["cleared"] else f"reached x {result['max_x']}"
    console.print(
        f"wrote {result['video']}: {result['video_frames']} frames at {result['fps']:.0f} fps; "
        f"the agent {outcome}"
    )


def cmd_bundle(args: argparse.Namespace) -> None:
    from mario_rl.agents import load_policy
    from mario_rl.bundled import bundle_agent
    from mario_rl.evaluate import evaluate, summary_line

    _one_inference_thread()
    level = args.level or load_policy(args.checkpoint).env_config.level

    def measure(model: Path) -> dict:
        def run(sticky: float, control: bool) -> dict:
            return evaluate(
                load_policy(model),
                level=level,
                episodes=args.episodes,
                noop_max=args.noop_max,
                seed=args.seed,
                max_stuck_steps=args.max_stuck_steps,
                progress=not args.quiet,
                sticky=sticky,
                control=control,
            )

        report = run(args.sticky, control=True)
        if args.sticky > 0:
            deterministic = run(0.0, control=False)
            report["deterministic_eval"] = {
                key: value for key, value in deterministic.items() if key != "per_episode"
            }
        return report

    root = Path(args.models_dir) if args.models_dir else None
    folder = bundle_agent(args.checkpoint, level, args.commands, measure, root, args.sample)
    report = json.loads((folder / "eval.json").read_text())
    console.print(summary_line(report))
    console.print(f"bundled in {folder}: model.pt, config.json, command.txt, eval.json")
    console.print("the README's row: " + bundled_table_row(report, folder))


def bundled_table_row(report: dict, folder: Path) -> str:
    """The README table's row for a bundled agent, from its eval.json."""
    config = json.loads((folder / "config.json").read_text())
    frames = report["mean_frames_to_clear"]
    deterministic = report.get("deterministic_eval", report if report["deterministic"] else None)
    control = report["control"]

    def rate(numbers: dict | None) -> str:
        return "-" if numbers is None else f"{numbers['clears']}/{numbers['episodes']}"

    return (
        f"| {report['level']} | {config.get('preset') or report['algo']} | {report['acting']} | "
        f"{rate(report)} | {rate(deterministic)} | {rate(control)} | "
        f"{report['distinct_trajectories']} | {report['mean_x']:.0f} | "
        f"{'-' if frames is None else f'{frames:.0f}'} |"
    )


def cmd_compare(args: argparse.Namespace) -> None:
    from mario_rl.compare import compare

    summary = compare(args.runs, writable_file(args.out), metric=args.metric, window=args.window)
    for label, numbers in summary.items():
        console.print(
            f"{label}: {numbers['runs']} run(s), {numbers['frames']:.0f} frames, "
            f"final {args.metric} {numbers['final']:.1f}"
        )
    console.print(f"saved {args.out}")


def _add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags `eval` and `record` share."""
    parser.add_argument(
        "checkpoint",
        metavar="AGENT",
        help="a checkpoint file, a run directory (its newest checkpoint) or a level name "
        "(the agent bundled under models/<level>/)",
    )
    parser.add_argument(
        "--level", type=_level, default=None, help="default: the agent's training level"
    )
    parser.add_argument(
        "--epsilon",
        type=probability,
        default=0.0,
        help="chance of a random action per step (default 0: greedy)",
    )
    parser.add_argument(
        "--sample",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw each action from the policy's distribution (PPO) instead of taking the "
        "greedy one (default: greedy, or what a bundled agent was measured with)",
    )
    parser.add_argument(
        "--noop-max",
        type=non_negative_int,
        default=30,
        help="random 0..N no-op frames at each start (default 30)",
    )
    parser.add_argument(
        "--max-stuck-steps",
        type=_positive_int,
        default=250,
        help="end an episode after N agent steps without a new best x (default 250)",
    )
    add_sticky_argument(parser)
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed (default 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")


def add_sticky_argument(parser: argparse.ArgumentParser) -> None:
    """`--sticky P` of every command that evaluates: default `EVAL_STICKY`, 0 deterministic."""
    from mario_rl.env.wrappers import EVAL_STICKY

    parser.add_argument(
        "--sticky",
        type=sticky_probability,
        default=EVAL_STICKY,
        metavar="P",
        help="each emulator frame repeats the previous action with probability P, so a "
        f"memorised button sequence cannot pass for a policy (default {EVAL_STICKY:g}, the Arcade "
        "Learning Environment's; 0: deterministic, where no-op starts alone do not perturb "
        "1-1)",
    )


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    from mario_rl.presets import PRESETS

    train = commands.add_parser(
        "train",
        help="train an agent (DQN or PPO family) from a preset",
        description="Train from a named preset; flags override single fields. Budgets are in "
        "emulator frames (--frames 2e6) and/or wall-clock minutes (--minutes 30); the first "
        "reached ends the run. Presets: "
        + "; ".join(f"{name}: {preset.source}" for name, preset in PRESETS.items()),
    )
    train.add_argument("--preset", choices=list(PRESETS), default=None, help="default dqn-fast")
    train.add_argument(
        "--algo",
        choices=("dqn", "ddqn", *PPO_ALGOS, "tabular"),
        default=None,
        help="DQN or Double DQN target (default: the preset's); ppo (game reward only) or "
        "ppo-icm (with curiosity; default presets ppo-fast and curiosity-ppo); or tabular: "
        "the CS229 symbolic-state Q-table (mario_rl.cs229_cli)",
    )
    train.add_argument("--level", type=_level, default=None, help="level (default 1-1)")
    train.add_argument(
        "--frames",
        type=_frames,
        default=None,
        help=f"frame budget, total (default {DEFAULT_TRAIN_FRAMES:.0e} if no --minutes)",
    )
    train.add_argument("--minutes", type=_positive_float, default=None, help="time budget")
    train.add_argument("--seed", type=non_negative_int, default=None, help="seed (default 0)")
    train.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=None,
        help="default auto: CUDA when present",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue RUN_DIR from its newest checkpoint, up to the new budget",
    )
    train.add_argument(
        "--save-replay",
        action="store_true",
        help="save the replay with each checkpoint, so --resume continues it",
    )
    train.add_argument("--checkpoint-every", type=_frames, default=None, help="frames")
    train.add_argument("--keep-checkpoints", type=_positive_int, default=None)
    train.add_argument("--runs-dir", default=None, help="default runs/")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    agent = train.add_argument_group("preset overrides")
    agent.add_argument("--actions", type=_action_set, default=None, help="action set")
    agent.add_argument(
        "--noop-max", type=non_negative_int, default=None, help="random no-op frames at starts"
    )
    agent.add_argument(
        "--sticky",
        type=sticky_probability,
        default=None,
        metavar="P",
        help="train under sticky actions: each emulator frame repeats the previous action "
        "with probability P (evaluation's default is 0.25)",
    )
    agent.add_argument(
        "--show-last-action",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="paint the previous action into the top rows of each frame, so the policy can "
        "tell a held jump button from a released one",
    )
    agent.add_argument(
        "--no-progress-steps",
        type=non_negative_int,
        default=None,
        help="truncate after N steps without a new best x (0: never)",
    )
    agent.add_argument("--lr", type=_positive_float, default=None, help="Adam learning rate")
    agent.add_argument("--gamma", type=probability, default=None, help="discount")
    agent.add_argument("--batch-size", type=_positive_int, default=None)
    agent.add_argument("--replay-size", type=_positive_int, default=None, help="transitions")
    agent.add_argument(
        "--burn-in", type=non_negative_int, default=None, help="agent steps before learning"
    )
    agent.add_argument("--learn-every", type=_positive_int, default=None, help="agent steps")
    agent.add_argument(
        "--sync-every",
        type=non_negative_int,
        default=None,
        help="agent steps between target syncs (0: no target network)",
    )
    agent.add_argument("--n-step", type=_positive_int, default=None)
    agent.add_argument("--dueling", action=argparse.BooleanOptionalAction, default=None)
    agent.add_argument(
        "--prioritized",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="prioritised replay (proportional, alpha 0.6, beta 0.4 -> 1 over the budget)",
    )
    agent.add_argument("--loss", choices=("huber", "l1", "mse"), default=None)
    agent.add_argument(
        "--reward-scale", type=_positive_float, default=None, help="DQN: factor on stored rewards"
    )
    agent.add_argument("--epsilon-end", type=probability, default=None)
    agent.add_argument("--num-envs", type=_positive_int, default=None)
    agent.add_argument(
        "--torch-threads", type=non_negative_int, default=None, help="0: cores left by envs"
    )
    agent.add_argument("--num-steps", type=_positive_int, default=None, help="PPO rollout steps")
    agent.add_argument("--num-epochs", type=_positive_int, default=None, help="PPO epochs")
    agent.add_argument("--num-minibatches", type=_positive_int, default=None, help="PPO")
    agent.add_argument(
        "--entropy-coef",
        type=_non_negative_float,
        default=None,
        help="PPO: weight of the entropy bonus (at the start, with --entropy-coef-end)",
    )
    agent.add_argument(
        "--entropy-coef-end",
        type=_non_negative_float,
        default=None,
        help="PPO: anneal the entropy weight linearly to this over the budget",
    )
    agent.add_argument(
        "--snapshot-starts",
        type=probability,
        default=None,
        help="share of training episodes started from the env's own best-run snapshots",
    )
    agent.add_argument(
        "--overlap",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="PPO: collect the next rollout while updating",
    )
    agent.add_argument(
        "--normalize-moves",
        type=non_negative_int,
        default=None,
        help="random moves that measure the observation normalisation (curiosity-ppo)",
    )
    agent.add_argument(
        "--replay-on-device",
        action="store_true",
        default=None,
        help="keep the replay's frames on the GPU",
    )
    train.set_defaults(func=cmd_train)


def add_training_commands(commands: argparse._SubParsersAction) -> None:
    """Add `train`, `eval`, `record` and `compare` to the `mario-rl` subcommands."""
    _add_train_parser(commands)

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a trained agent: clear rate, x, frames and game time to clear",
        description="Episodes from the level's start after random no-ops, under sticky "
        "actions (default p=0.25 per frame; --sticky 0 is the deterministic game), greedy by "
        "default (--sample, --epsilon). Prints the conditions, the clear rate and the number "
        "of distinct trajectories, and saves JSON (default: RUN_DIR/eval/). Then the blind-replay "
        "control: the actions of the first cleared episode replayed open loop on as many "
        "fresh starts, to show how much the policy uses what it sees (--no-control: skip).",
    )
    _add_policy_arguments(evaluate)
    evaluate.add_argument(
        "--control",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also score the blind replay of the first cleared episode's actions on as many "
        "fresh starts (default on; --no-control halves the time)",
    )
    evaluate.add_argument("--episodes", type=_positive_int, default=20, help="default 20")
    evaluate.add_argument("--out", default=None, help="JSON path (default: RUN_DIR/eval/...)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=cmd_eval)

    record = commands.add_parser(
        "record", help="record one evaluation episode as a full-colour .mp4 or .gif"
    )
    _add_policy_arguments(record)
    record.add_argument("--out", default="mario.mp4", help="mario.mp4 or mario.gif")
    record.set_defaults(func=cmd_record)

    bundle = commands.add_parser(
        "bundle",
        help="copy a trained checkpoint into models/<level>/ and measure it into eval.json",
        description="Writes models/<level>/ as models/README.md describes: model.pt (the "
        "checkpoint without its optimiser and other training-only state), the run's "
        "config.json, command.txt (the --command lines) and eval.json: an evaluation of "
        "model.pt from the level's real start with random no-op starts under sticky actions "
        "(--sticky, default 0.25), its blind-replay control (a cleared episode's actions "
        "replayed open loop on fresh starts) and the deterministic evaluation beside them. "
        "Prints the row for the README's table of bundled agents.",
    )
    bundle.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="a checkpoint file or a run directory"
    )
    bundle.add_argument(
        "--command",
        dest="commands",  # not `command`: the subcommand's own name is kept there
        action="append",
        required=True,
        help="a command line that trained it, as typed; repeat for a resumed run (lines "
        "starting with # are notes)",
    )
    bundle.add_argument(
        "--level", type=_level, default=None, help="default: the checkpoint's training level"
    )
    bundle.add_argument(
        "--sample",
        action="store_true",
        help="the agent acts by sampling its policy (PPO), in eval.json, watch and race",
    )
    bundle.add_argument("--episodes", type=_positive_int, default=20, help="default 20")
    bundle.add_argument("--noop-max", type=non_negative_int, default=30, help="default 30")
    bundle.add_argument("--max-stuck-steps", type=_positive_int, default=250, help="default 250")
    add_sticky_argument(bundle)
    bundle.add_argument("--seed", type=non_negative_int, default=0, help="default 0")
    bundle.add_argument("--models-dir", default=None, help="default: the repository's models/")
    bundle.add_argument("--quiet", action="store_true", help="no progress bar")
    bundle.set_defaults(func=cmd_bundle)

    compare = commands.add_parser(
        "compare",
        help="learning curves of runs as one PNG (mean and spread across seeds)",
        description="Groups runs by preset (or algo) and draws each group's mean curve over "
        "emulator frames with its min-max band across runs.",
    )
    compare.add_argument("runs", nargs="+", metavar="RUN_DIR")
    compare.add_argument("--out", default="compare.png", help="PNG path (default compare.png)")
    compare.add_argument("--metric", choices=("return", "max_x", "flag"), default="return")
    compare.add_argument(
        "--window", type=_positive_int, default=20, help="episodes in the rolling mean (default 20)"
    )
    compare.set_defaults(func=cmd_compare)
