"""`mario-rl train`, `eval`, `record` and `compare`: training runs and what reads them.

Heavy modules (torch, the agents) are imported only when a command runs.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from mario_rl.cli.args import (
    PRESET_NAMES,
    TERMINAL_NEXT_OBS,
    UsageError,
    action_set_name,
    frames,
    level_name,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
    sticky_probability,
)
from mario_rl.outputs import writable_folder

console = Console(width=max(Console().width, 100))
DEFAULT_TRAIN_FRAMES = 2_000_000
"""Frame budget of `train` when neither --frames nor --minutes is given."""


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
    "learner_thread": "learner_thread",
    "replay_on_device": "replay_on_device",
    "num_steps": "num_steps",
    "num_epochs": "num_epochs",
    "num_minibatches": "num_minibatches",
    "snapshot_start_probability": "snapshot_start_probability",
    "death_start_probability": "death_start_probability",
    "death_start_spread": "death_start_spread",
    "reward_scale": "reward_scale",
    "overlap": "overlap",
    "env_groups": "env_groups",
    "entropy_coef": "entropy_coef",
    "entropy_coef_end": "entropy_coef_end",
    "entropy_floor": "entropy_floor",
    "entropy_floor_coef": "entropy_floor_coef",
    "terminal_next_obs": "terminal_next_obs",
}
ENV_FLAGS = {
    "actions": "actions",
    "noop_max": "noop_max",
    "no_progress_steps": "no_progress_steps",
    "stall_is_death": "no_progress_is_death",
    "normalize_moves": "normalize_moves",
    "sticky": "sticky_probability",
    "show_last_action": "show_last_action",
    "train_levels": "levels",
}
PPO_ALGOS = ("ppo", "ppo-icm")
"""`--algo` values that train with PPO: without curiosity, or with it mixed in."""
TABULAR_TRAIN_FLAGS = ("gamma", "noop_max", "no_progress_steps", "num_envs")
"""`mario-rl train` flags that `--algo tabular` maps onto `CS229Config` fields."""
RUN_FLAGS = {
    "checkpoint_every": "checkpoint_every",
    "keep_checkpoints": "keep_checkpoints",
    "runs_dir": "runs_dir",
    "ray": "ray",
    "env_actors": "env_actors",
    "keep_copy": "keep_copy",
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
    # Named as typed: the flag, not the field it sets (--lr, not --learning-rate).
    foreign = sorted(
        dest for dest, field in AGENT_FLAGS.items() if field in given and field not in known
    )
    if foreign:
        flags = ", ".join("--" + dest.replace("_", "-") for dest in foreign)
        raise UsageError(f"{flags} do(es) not apply to {type(agent).__name__}; drop them")
    return given


def _with_algo(agent: object, algo: str | None) -> object:
    """The agent with `--algo` applied: the DQN target, PPO with or without curiosity, or
    the random agent on the preset's pipeline."""
    from dataclasses import replace

    from mario_rl.agents.ppo import PPOConfig

    if algo is None:
        return agent
    if algo == "random":
        from mario_rl.agents.random_actions import RandomConfig

        # As many envs as the preset's agent plays, so the two runs share their pipeline.
        return RandomConfig(num_envs=getattr(agent, "num_envs", 1))
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


def _train_tabular(args: argparse.Namespace) -> Path:
    """`mario-rl train --algo tabular`: the CS229 agent with the report's settings.

    Takes the shared train flags (level, seed, budgets, runs dir, checkpoints, quiet) and,
    of the agent flags, --gamma, --noop-max, --no-progress-steps (decisions) and --num-envs
    (envs in worker processes feeding the one table); the others belong to the network
    agents and are refused, as is --preset. A run is continued with `mario-rl train --resume
    RUN_DIR`, which reads its config.json (`cmd_train`).
    """
    from mario_rl.agents.cs229 import CS229Config
    from mario_rl.env.pipeline import EnvConfig
    from mario_rl.runs import RunConfig
    from mario_rl.training import train

    others = [
        *AGENT_FLAGS,
        *ENV_FLAGS,
        "preset",
        "resume",
        "save_replay",
        "init_from",
        "schedule_frames",
    ]
    refused = [name for name in others if name not in TABULAR_TRAIN_FLAGS]
    given = [name for name in refused if getattr(args, name, None) not in (None, False)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ValueError(
            f"--algo tabular: expected only the shared flags and --gamma, --noop-max, "
            f"--no-progress-steps, --num-envs, got {flags}; the CS229 agent has no such setting"
        )
    changes = {
        field: getattr(args, flag)
        for flag, field in zip(
            TABULAR_TRAIN_FLAGS,
            ("gamma", "noop_max", "no_progress_decisions", "num_envs"),
            strict=True,
        )
        if getattr(args, flag, None) is not None
    }
    config = replace(CS229Config(), **changes)
    frames, minutes = args.frames, args.minutes
    if frames is None and minutes is None:
        frames = DEFAULT_TRAIN_FRAMES
    run = RunConfig(seed=args.seed or 0, frames=frames, minutes=minutes, progress=not args.quiet)
    overrides = {
        "runs_dir": args.runs_dir,
        "checkpoint_every": args.checkpoint_every,
        "keep_checkpoints": args.keep_checkpoints,
        "keep_copy": args.keep_copy,
    }
    run = replace(run, **{name: value for name, value in overrides.items() if value is not None})
    return train(run, EnvConfig(level=args.level or "1-1"), config)


def cmd_train(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from mario_rl import training
    from mario_rl.env.pipeline import EnvConfig
    from mario_rl.presets import get_preset
    from mario_rl.runs import RunConfig, RunDir, resolve_checkpoint

    if args.keep_copy is not None:  # before any run starts, tabular ones too
        writable_folder(args.keep_copy, f"--keep-copy: cannot write into {args.keep_copy}")
    if args.algo == "tabular" and not args.resume:  # a resume takes the run's own config
        if args.ray is not None or args.env_actors is not None:
            raise UsageError("--ray: the tabular agent steps one env here (PPO and DQN use Ray)")
        run_dir = _train_tabular(args)
        console.print(
            f"run saved in [bold]{run_dir}[/bold]; evaluate it with: mario-rl eval {run_dir}"
        )
        return
    budget = {
        "frames": args.frames,
        "minutes": args.minutes,
        "schedule_frames": args.schedule_frames,
    }
    if args.resume and args.init_from:
        raise UsageError(
            "--resume continues a run, --init-from starts a new one from another run's "
            "networks; expected one of them"
        )
    if (args.ray is None) != (args.env_actors is None) and not args.resume:
        raise UsageError(
            "--ray ADDRESS and --env-actors N go together: the cluster, and how many actors "
            "collect experience on it"
        )
    if args.resume:
        # A resumed Ray run may find its cluster at another address, and any run may start
        # (or move) its kept copy.
        resume_run_flags = {
            dest: field for dest, field in RUN_FLAGS.items() if dest not in ("ray", "keep_copy")
        }
        changed = _given(args, AGENT_FLAGS | ENV_FLAGS | resume_run_flags)
        if changed or args.preset or args.algo or args.level or args.seed is not None:
            raise UsageError(
                "--resume continues the run with its own config.json; drop the flags that "
                "change it (only --frames, --minutes, --schedule-frames, --device, "
                "--save-replay, --keep-copy, --quiet and, "
                "for a Ray run, --ray apply)"
            )
        saved_run = RunDir(args.resume)
        saved = saved_run.config()
        env_config = saved_run.config_section("env", EnvConfig)
        agent = saved_run.config_section("agent", training.config_class(saved.get("algo", "")))
        run = saved_run.config_section("run", RunConfig)
        run = replace(run, **{k: v for k, v in budget.items() if v is not None})
        if args.ray is not None:
            if run.ray is None:
                raise UsageError(f"--ray: {args.resume} was trained with local env workers")
            run = replace(run, ray=args.ray)
        if args.keep_copy is not None:
            run = replace(run, keep_copy=args.keep_copy)
        preset_name = saved.get("preset")
    else:
        default_preset = {"ppo": "ppo-fast", "ppo-icm": "curiosity-ppo", "random": "ppo-fast"}
        preset = get_preset(args.preset or default_preset.get(args.algo, "dqn-fast"))
        preset_name = preset.name
        env_config = replace(preset.env, level=args.level or "1-1", **_given(args, ENV_FLAGS))
        if env_config.no_progress_is_death and env_config.no_progress_steps == 0:
            raise UsageError(
                f"--stall-is-death: {preset.name} never cuts a stall (no_progress_steps 0); "
                "give --no-progress-steps N too"
            )
        agent = _with_algo(preset.agent, args.algo)
        agent = replace(agent, **_agent_overrides(args, agent))
        if args.terminal_next_obs is not None and not getattr(agent, "uses_icm", False):
            raise UsageError(
                "--terminal-next-obs: only curiosity's ICM reads it; use --algo ppo-icm or a "
                "curiosity preset (curiosity-ppo, ppo-levels-icm)"
            )
        if args.frames is None and args.minutes is None:
            budget["frames"] = DEFAULT_TRAIN_FRAMES
        run = RunConfig(seed=args.seed or 0, **budget, **_given(args, RUN_FLAGS))
    run = replace(
        run,
        device=args.device or run.device,
        save_replay=args.save_replay or run.save_replay,
        progress=not args.quiet,
    )
    if args.init_from:
        resolve_checkpoint(args.init_from)  # a missing one, before any folder is made
    # Before any env starts: a run that cannot save would train for nothing.
    folder = args.resume or run.runs_dir
    writable_folder(folder, f"cannot write the run's files into {folder}")
    if run.keep_copy is not None and args.keep_copy is None:  # a resumed run's own
        writable_folder(run.keep_copy, f"cannot write the kept copy into {run.keep_copy}")
    run_dir = training.train(
        run,
        env_config,
        agent,
        resume=args.resume,
        preset=preset_name,
        init_from=args.init_from,
    )
    console.print(f"run saved in [bold]{run_dir}[/bold]; evaluate it with: mario-rl eval {run_dir}")


TRAIN_DESCRIPTION = (
    "Train from a named preset; flags override single fields. Budgets are in emulator frames "
    "(--frames 2e6) and/or wall-clock minutes (--minutes 30); the first reached ends the run."
)


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train an agent (DQN or PPO family) from a preset",
        description=TRAIN_DESCRIPTION,
    )
    plain_help = train.format_help

    def help_with_presets() -> str:
        # The presets' sources, only when help is asked for: the presets import the agents,
        # and so torch, which every other command's start would otherwise wait for.
        from mario_rl.presets import PRESETS

        sources = "; ".join(f"{name}: {preset.source}" for name, preset in PRESETS.items())
        train.description = f"{TRAIN_DESCRIPTION} Presets: {sources}"
        return plain_help()

    train.format_help = help_with_presets  # type: ignore[method-assign]
    train.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        default=None,
        help="default dqn-fast (ppo-fast with --algo ppo or random, curiosity-ppo with ppo-icm)",
    )
    train.add_argument(
        "--algo",
        choices=("dqn", "ddqn", *PPO_ALGOS, "tabular", "random"),
        default=None,
        help="DQN or Double DQN target (default: the preset's); ppo (game reward only) or "
        "ppo-icm (with curiosity; default presets ppo-fast and curiosity-ppo); tabular: "
        "the CS229 symbolic-state Q-table (mario_rl.agents.cs229); or random: uniformly random "
        "actions on the preset's pipeline (default ppo-fast), logged as a run, the baseline "
        "for `mario-rl compare`",
    )
    train.add_argument("--level", type=level_name, default=None, help="level (default 1-1)")
    train.add_argument(
        "--train-levels",
        nargs="+",
        type=level_name,
        default=None,
        metavar="LEVEL",
        help="also train on these levels: each episode plays one of --level and these, drawn "
        "uniformly (one model for many levels; evaluate it per level with eval --level)",
    )
    train.add_argument(
        "--frames",
        type=frames,
        default=None,
        help=f"frame budget, total (default {DEFAULT_TRAIN_FRAMES:.0e} if no --minutes)",
    )
    train.add_argument("--minutes", type=positive_float, default=None, help="time budget")
    train.add_argument(
        "--schedule-frames",
        type=frames,
        default=None,
        metavar="N",
        help="frames the schedules (PPO's learning-rate and entropy annealing, DQN's "
        "prioritised-replay beta) span, for a run trained "
        "in pieces: --frames 1e6 --schedule-frames 10e6, then --resume RUN_DIR --frames 2e6 "
        "anneals as one 10M-frame run (default: the frame or minute budget)",
    )
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
        "--init-from",
        metavar="CHECKPOINT",
        default=None,
        help="start a new run from this checkpoint's networks (or a run directory's newest): "
        "a warm start, e.g. fine-tuning with other settings; optimiser, counters and "
        "schedules start fresh, and config.json records the checkpoint and its frames; "
        "PPO may go on into an action set that extends the checkpoint's (--actions simple "
        "from right_only: each new action starts as the mean of the old ones)",
    )
    train.add_argument(
        "--save-replay",
        action="store_true",
        help="save the replay with each checkpoint, so --resume continues it",
    )
    train.add_argument("--checkpoint-every", type=frames, default=None, help="frames")
    train.add_argument("--keep-checkpoints", type=positive_int, default=None)
    train.add_argument("--runs-dir", default=None, help="default runs/")
    train.add_argument(
        "--keep-copy",
        metavar="DIR",
        default=None,
        help="after each checkpoint, copy what a resume needs (config, episode log, the "
        "newest checkpoint; not TensorBoard's events or a replay) into DIR/<run name>/, "
        "replacing the copy before: a run that outlives the machine when DIR does (a folder "
        "git tracks, a mounted disk); copy it back into a runs folder and --resume it. "
        "A relative DIR is taken from the folder train starts in, then and on each resume",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    cluster = train.add_argument_group(
        "Ray (PPO and DQN; the optional extra: pip install -e '.[ray]')"
    )
    cluster.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="collect experience on Ray actors instead of local env workers: local (a "
        "private Ray instance on this machine), auto (the cluster this machine joined with "
        "`ray start`) or the head node's HOST:PORT; the learner runs here",
    )
    cluster.add_argument(
        "--env-actors",
        type=positive_int,
        default=None,
        metavar="N",
        help="Ray actors, each stepping num_envs / N envs with a copy of the policy and "
        "returning whole rollouts (a divisor of --num-envs)",
    )
    agent = train.add_argument_group("preset overrides")
    agent.add_argument("--actions", type=action_set_name, default=None, help="action set")
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
    agent.add_argument(
        # Not --no-progress-is-death: BooleanOptionalAction reads a leading --no- as "off".
        "--stall-is-death",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="end an episode cut for no progress (a stall) as a death (terminated, with the "
        "death penalty) instead of truncating it, so that training counts a stall as the "
        "failure evaluation does",
    )
    agent.add_argument("--lr", type=positive_float, default=None, help="Adam learning rate")
    agent.add_argument("--gamma", type=probability, default=None, help="discount")
    agent.add_argument("--batch-size", type=positive_int, default=None)
    agent.add_argument("--replay-size", type=positive_int, default=None, help="transitions")
    agent.add_argument(
        "--burn-in", type=non_negative_int, default=None, help="agent steps before learning"
    )
    agent.add_argument("--learn-every", type=positive_int, default=None, help="agent steps")
    agent.add_argument(
        "--sync-every",
        type=non_negative_int,
        default=None,
        help="agent steps between target syncs (0: no target network)",
    )
    agent.add_argument("--n-step", type=positive_int, default=None)
    agent.add_argument("--dueling", action=argparse.BooleanOptionalAction, default=None)
    agent.add_argument(
        "--prioritized",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="prioritised replay (proportional, alpha 0.6, beta 0.4 -> 1 over the budget)",
    )
    agent.add_argument("--loss", choices=("huber", "l1", "mse"), default=None)
    agent.add_argument(
        "--reward-scale",
        type=positive_float,
        default=None,
        help="factor on the game's reward before learning (logged returns stay unscaled; "
        "PPO's intrinsic mode has no game reward to scale)",
    )
    agent.add_argument("--epsilon-end", type=probability, default=None)
    agent.add_argument("--num-envs", type=positive_int, default=None)
    agent.add_argument(
        "--torch-threads", type=non_negative_int, default=None, help="0: cores left by envs"
    )
    agent.add_argument(
        "--learner-thread",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="DQN: make each update in a second thread, one always in flight while the envs "
        "step (they act with the weights of the update before it)",
    )
    agent.add_argument("--num-steps", type=positive_int, default=None, help="PPO rollout steps")
    agent.add_argument("--num-epochs", type=positive_int, default=None, help="PPO epochs")
    agent.add_argument("--num-minibatches", type=positive_int, default=None, help="PPO")
    agent.add_argument(
        "--entropy-coef",
        type=non_negative_float,
        default=None,
        help="PPO: weight of the entropy bonus (at the start, with --entropy-coef-end)",
    )
    agent.add_argument(
        "--entropy-coef-end",
        type=non_negative_float,
        default=None,
        help="PPO: anneal the entropy weight linearly to this over the budget",
    )
    agent.add_argument(
        "--entropy-floor",
        type=non_negative_float,
        default=None,
        metavar="NATS",
        help="PPO: a state whose policy entropy is under this many nats is pulled toward "
        "the uniform policy (by KL(uniform || policy), whose pull does not fade as the policy "
        "saturates), so that a policy sure of itself keeps trying its other moves there (0: "
        "off; below log of the action count: 1.61 for RIGHT_ONLY's 5, 2.48 for "
        "COMPLEX_MOVEMENT's 12)",
    )
    agent.add_argument(
        "--entropy-floor-coef",
        type=non_negative_float,
        default=None,
        help="PPO: weight of the entropy floor's loss, its mean over states (default 0.1)",
    )
    agent.add_argument(
        "--terminal-next-obs",
        choices=TERMINAL_NEXT_OBS,
        default=None,
        help="PPO with curiosity: what a step that ended its episode stores as its next "
        "observation, the one the ICM's surprisal is taken on: final (default; the "
        "episode's own last frame) or next-start (the next episode's first frame, as a "
        "rollout ignoring Gymnasium's final_obs would: pays curiosity for dying; an ablation)",
    )
    agent.add_argument(
        "--snapshot-start-probability",
        "--snapshot-starts",
        type=probability,
        default=None,
        help="chance that a training episode starts from one of the env's own best-run "
        "snapshots instead of the level's start",
    )
    agent.add_argument(
        "--death-start-probability",
        "--death-starts",
        type=probability,
        default=None,
        help="chance that a training episode starts shortly before one of the env's own "
        "recent deaths (practice where the agent still fails); at most 1 minus "
        "--snapshot-start-probability",
    )
    agent.add_argument(
        "--death-start-spread",
        type=non_negative_int,
        default=None,
        help="draw each death start from this many snapshots further back too, uniformly "
        "(0: always the nearest, about 17-24 steps before the death; each snapshot back is "
        "8 steps more): for deaths whose cause comes earlier than the fall",
    )
    agent.add_argument(
        "--overlap",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="PPO: collect the next rollout while updating",
    )
    agent.add_argument(
        "--env-groups",
        type=positive_int,
        default=None,
        help="PPO and DQN: step the env workers in this many groups, in turn, so the network "
        "acts on one while the others emulate (a divisor of --num-envs; speed only, the same "
        "run)",
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
    """Add `train` to the `mario-rl` subcommands."""
    _add_train_parser(commands)
