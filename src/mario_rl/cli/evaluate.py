"""`mario-rl eval`, `record`, `bundle` and `compare`: what reads a trained agent or its runs.

Heavy modules (torch, the agents) are imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from mario_rl.cli.args import (
    UsageError,
    add_sticky_argument,
    add_workers_argument,
    level_name,
    non_negative_int,
    positive_int,
    probability,
)
from mario_rl.env.levels import parse_level
from mario_rl.outputs import writable_file

if TYPE_CHECKING:
    from mario_rl.agents import Policy

console = Console(width=max(Console().width, 100))
PLOT_FORMATS = (".png", ".svg", ".pdf")


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

    if args.death_map and Path(args.death_map).suffix.lower() not in PLOT_FORMATS:
        raise UsageError(
            f"--death-map: expected a file ending in {', '.join(PLOT_FORMATS)}, "
            f"got {args.death_map!r}"
        )
    if args.workers > 1 and args.device != "cpu":
        from mario_rl.runs import resolve_device

        if resolve_device(args.device).type != "cpu":
            raise UsageError(
                f"--workers {args.workers}: evaluation workers act on the CPU, so their "
                f"report could differ from --device {args.device}'s; use --workers 1 there"
            )
    policy, bundled = _policy_from_argument(args)
    level = parse_level(args.level or policy.env_config.level).name
    if args.out:
        out = writable_file(args.out)
    elif bundled:  # not into models/: runs/ is where outputs go
        out = writable_file(default_report_path("runs/bundled", level))
    else:
        out = writable_file(default_report_path(policy.checkpoint_path, level))
    death_map = writable_file(args.death_map) if args.death_map else None
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
        workers=args.workers,
    )
    path = save_report(report, out)
    console.print(summary_line(report))
    console.print(f"saved {path}")
    if death_map is not None:
        from mario_rl.record import plot_death_map

        console.print(f"saved {plot_death_map(report, death_map)} (where episodes ended)")


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
    from mario_rl.bundled import bundle_agent, bundle_measure, bundled_table_row
    from mario_rl.evaluate import summary_line

    _one_inference_thread()
    level = args.level or load_policy(args.checkpoint).env_config.level

    measure = bundle_measure(
        level,
        args.episodes,
        args.seed,
        args.sticky,
        args.noop_max,
        args.max_stuck_steps,
        progress=not args.quiet,
        workers=args.workers,
    )
    root = Path(args.models_dir) if args.models_dir else None
    folder = bundle_agent(args.checkpoint, level, args.commands, measure, root, args.sample)
    report = json.loads((folder / "eval.json").read_text())
    console.print(summary_line(report))
    console.print(f"bundled in {folder}: model.pt, config.json, command.txt, eval.json")
    console.print("the README's row: " + bundled_table_row(report, folder))


REPORT_FIELDS = ("level", "algo", "acting", "sticky_probability", "noop_max")
"""What a death map's title reads of an evaluation report, beside its episodes."""
EPISODES_FIELDS = ("episodes", "clears", "max_x", "per_episode")
EPISODE_FIELDS = ("cleared", "max_x", "stuck")


def cmd_death_map(args: argparse.Namespace) -> None:
    from mario_rl.record import plot_death_map

    if Path(args.out).suffix.lower() not in PLOT_FORMATS:
        raise UsageError(
            f"--out: expected a file ending in {', '.join(PLOT_FORMATS)}, got {args.out!r}"
        )
    if not Path(args.report).is_file():
        raise UsageError(f"{args.report}: no such file")
    out = writable_file(args.out)
    try:
        report = json.loads(Path(args.report).read_text())
        episodes = report
        if args.control:
            control = report["control"]
            # The control's episodes under its report's conditions (level, sticky, no-ops).
            acting = f"blind replay of seed {control['source_seed']}'s actions"
            episodes = {**report, **control, "acting": acting}
        missing = [name for name in (*REPORT_FIELDS, *EPISODES_FIELDS) if name not in episodes]
        missing += [
            f"per_episode[{index}].{name}"
            for index, episode in enumerate(episodes["per_episode"])
            for name in EPISODE_FIELDS
            if name not in episode
        ]
        if missing:
            raise KeyError(", ".join(missing[:5]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        kind = "a blind-replay control" if args.control else "episodes"
        raise UsageError(
            f"{args.report}: not an evaluation report with {kind} (`mario-rl eval`'s JSON, "
            f"a bundle's eval.json or a levels-table check's); {type(error).__name__}: {error}"
        ) from error
    plot_death_map(episodes, out, flag_x=args.flag_x)
    failed = sum(not e["cleared"] for e in episodes["per_episode"])
    console.print(f"saved {out}: where {failed} of {len(episodes['per_episode'])} episodes ended")


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
        "--level", type=level_name, default=None, help="default: the agent's training level"
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
        type=positive_int,
        default=250,
        help="end an episode after N agent steps without a new best x (default 250)",
    )
    add_sticky_argument(parser)
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed (default 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")


def add_run_commands(commands: argparse._SubParsersAction) -> None:
    """Add `eval`, `record`, `bundle`, `death-map` and `compare` to the `mario-rl`
    subcommands."""
    evaluate = commands.add_parser(
        "eval",
        help="evaluate a trained agent: clear rate, x, frames and game time to clear",
        description="Episodes from the level's start after random no-ops, under sticky "
        "actions (default p=0.25 per frame; --sticky 0 is the deterministic game), greedy by "
        "default (--sample, --epsilon). Prints the conditions, the clear rate and the number "
        "of distinct trajectories, and saves JSON (default: RUN_DIR/eval/, or runs/bundled/eval/ "
        "for a level's bundled agent). Then the blind-replay "
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
    evaluate.add_argument("--episodes", type=positive_int, default=20, help="default 20")
    evaluate.add_argument(
        "--out",
        default=None,
        help="JSON path (default: RUN_DIR/eval/..., or runs/bundled/eval/... for a level)",
    )
    evaluate.add_argument(
        "--death-map",
        default=None,
        metavar="FILE",
        help="also plot where along the level the episodes that did not clear ended, and how "
        "(a .png, .svg or .pdf file)",
    )
    add_workers_argument(evaluate)
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
        "--level", type=level_name, default=None, help="default: the checkpoint's training level"
    )
    bundle.add_argument(
        "--sample",
        action="store_true",
        help="the agent acts by sampling its policy (PPO), in eval.json, watch and race",
    )
    bundle.add_argument("--episodes", type=positive_int, default=20, help="default 20")
    bundle.add_argument("--noop-max", type=non_negative_int, default=30, help="default 30")
    bundle.add_argument("--max-stuck-steps", type=positive_int, default=250, help="default 250")
    add_sticky_argument(bundle)
    bundle.add_argument("--seed", type=non_negative_int, default=0, help="default 0")
    bundle.add_argument("--models-dir", default=None, help="default: the repository's models/")
    add_workers_argument(bundle)
    bundle.add_argument("--quiet", action="store_true", help="no progress bar")
    bundle.set_defaults(func=cmd_bundle)

    death_map = commands.add_parser(
        "death-map",
        help="where the episodes of a saved evaluation report that did not clear ended",
        description="Reads an evaluation report (`mario-rl eval`'s JSON, a bundle's eval.json, "
        "or a levels-table check's checks/frames_N.json) and plots, per half-screen band of "
        "the level, how many of its episodes that did not clear ended there, and how (died: "
        "fell into a pit or lava, hit by an enemy or its fire, or out of time, in reports "
        "that record it; stuck; looped: sent back by a castle's loop; hatched: in another "
        "area than they started, such as a pipe's).",
    )
    death_map.add_argument("report", metavar="REPORT_JSON")
    death_map.add_argument("--out", required=True, help="a .png, .svg or .pdf file")
    death_map.add_argument(
        "--control",
        action="store_true",
        help="plot the report's blind-replay control instead of the policy's episodes",
    )
    death_map.add_argument(
        "--flag-x",
        type=positive_int,
        default=None,
        help="mark the level's flag at this x (default: the level's flagpole or castle axe, "
        "from the game's level data)",
    )
    death_map.set_defaults(func=cmd_death_map)

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
        "--window", type=positive_int, default=20, help="episodes in the rolling mean (default 20)"
    )
    compare.set_defaults(func=cmd_compare)
