"""The training runner: one loop that runs every agent's `Trainer` the same way.

`train(run, env_config, agent)` picks the trainer by the type of `agent` (its config
dataclass) and owns what all runs share: the run directory (new, or the one `resume`
continues from its newest checkpoint), the global RNG seeds and states, the budget, the
progress bar, `episodes.csv` / TensorBoard / `log.txt`, the checkpoint schedule, the
checkpoint at the end and on Ctrl-C (or SIGTERM), and closing the envs on any exit.
`init_from` starts a new run from another run's trained networks (a warm start). A new
agent is a `Trainer` class (see `mario_rl.runs.Trainer`), one entry in `TRAINERS` and one
in `ALGO_CONFIGS`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from mario_rl.agents import cs229, dqn, ppo, random_actions
from mario_rl.env import actions
from mario_rl.env.pipeline import EnvConfig
from mario_rl.runs import (
    SUMMARY_EVERY,
    Budget,
    CheckpointError,
    MetricsLogger,
    Progress,
    RunConfig,
    RunDir,
    Trainer,
    check_compatible,
    check_keep_copy,
    keep_copy_of,
    load_checkpoint,
    resolve_device,
    retain_freed_memory,
    rng_states,
    save_checkpoint,
    seed_everything,
    set_rng_states,
    write_text_atomic,
)
from mario_rl.stopping import stop_exception, stop_signals_deferred

AgentConfig = dqn.DQNConfig | ppo.PPOConfig | cs229.CS229Config | random_actions.RandomConfig

TRAINERS: dict[type, type] = {
    dqn.DQNConfig: dqn.DQNTrainer,
    ppo.PPOConfig: ppo.PPOTrainer,
    cs229.CS229Config: cs229.CS229Trainer,
    random_actions.RandomConfig: random_actions.RandomTrainer,
}
"""The `Trainer` class of each agent config type."""
ALGO_CONFIGS: dict[str, type] = {
    "dqn": dqn.DQNConfig,
    "ddqn": dqn.DQNConfig,
    "ppo": ppo.PPOConfig,
    "ppo-icm": ppo.PPOConfig,
    cs229.ALGO: cs229.CS229Config,
    random_actions.ALGO: random_actions.RandomConfig,
}
"""The config type of each `algo` a run's config.json may name (for `--resume`)."""


def config_class(algo: str) -> type:
    """The agent config dataclass of runs whose config.json says `algo`."""
    try:
        return ALGO_CONFIGS[algo]
    except KeyError:
        raise ValueError(
            f"unknown algo {algo!r}: expected one of {', '.join(ALGO_CONFIGS)}"
        ) from None


WARM_START_FIELDS = (
    "frame_skip", "pool_frames", "keep_frames", "resize", "crop_top", "crop_bottom",
    "frame_stack", "scale", "normalize_moves", "show_last_action",
)  # fmt: skip
"""`EnvConfig` fields a warm start must share with its checkpoint: what the networks see.
The level, sticky actions, no-op starts and episode rules may differ."""


def check_warm_start(checkpoint: dict[str, Any], env_config: EnvConfig) -> None:
    """A one-line `CheckpointError` unless `env_config` makes the observations the
    checkpoint's networks were trained on (and is not normalised: a normalised pipeline
    measures its own statistics, which the networks never saw)."""
    saved, new = checkpoint["env_config"], env_config.to_dict()
    differ = [name for name in WARM_START_FIELDS if saved.get(name) != new.get(name)]
    if differ:
        pairs = ", ".join(
            f"{name} {saved.get(name)!r} there, {new.get(name)!r} here" for name in differ
        )
        raise CheckpointError(
            f"{checkpoint['path']}: its networks saw other observations ({pairs}); "
            "train with the checkpoint's settings or start from another checkpoint"
        )
    if env_config.normalize_moves > 0:
        raise CheckpointError(
            "init_from: a pipeline with normalize_moves measures its own normalisation, which "
            "the checkpoint's networks never saw; warm starts need normalize_moves 0"
        )


def check_warm_start_identity(
    checkpoint: dict[str, Any], trainer_class: type, env_config: EnvConfig, agent: AgentConfig
) -> None:
    """`check_compatible` for a warm start, which may also go from an action set to one that
    extends it (`mario_rl.env.actions.extends`: right_only's five actions, then more) where
    the trainer can grow its policy (`grows_actions`: PPO without the ICM). The new actions
    start where the trainer's `init_weights` puts them; the last-action strip, when the
    pipeline shows one, splits the frame's width among more actions, so its marks move."""
    algo, action_set, network = trainer_class.identity(env_config, agent)
    made = checkpoint["action_set"]
    if made != action_set and actions.extends(action_set, made):
        grows_actions = getattr(trainer_class, "grows_actions", None)
        if grows_actions is None:
            raise CheckpointError(
                f"init_from: {trainer_class.__name__} cannot start from a checkpoint made for "
                f"fewer actions ({made} there, {action_set} here; PPO can)"
            )
        if not grows_actions(agent):
            raise CheckpointError(
                f"init_from: {checkpoint['path']} has {len(actions.action_set(made))} actions "
                f"and this run {len(actions.action_set(action_set))}; a warm start into more "
                "actions is for PPO without the ICM (whose inverse model predicts the action)"
            )
        action_set = made
    check_compatible(checkpoint, algo, action_set, network)


def train(
    run: RunConfig,
    env_config: EnvConfig,
    agent: AgentConfig,
    resume: str | Path | None = None,
    preset: str | None = None,
    init_from: str | Path | None = None,
    **options: Any,
) -> Path:
    """Train `agent` until the run's budget is spent (or the trainer is done); returns the
    run directory. `resume` continues a run directory from its newest checkpoint.
    `init_from` (a checkpoint, or a run directory's newest) starts a new run with that
    checkpoint's networks and fresh counters, optimiser and schedules; its pipeline must
    make the same observations (`WARM_START_FIELDS`). config.json's `init_from` names the
    checkpoint and the frames its networks had trained on, over every earlier stage, so
    the frames behind the result are those plus this run's.
    `options` go to the trainer (e.g. DQN's `envs_fn`, for tests)."""
    try:
        trainer_class = TRAINERS[type(agent)]
    except KeyError:
        raise TypeError(f"no trainer for {type(agent).__name__}") from None
    if resume is not None and init_from is not None:
        raise ValueError("resume and init_from: expected one of them, got both")
    if run.ray is not None and not getattr(trainer_class, "ray_actors", False):
        raise ValueError(
            f"ray: {trainer_class.__name__} collects with local env workers only "
            "(PPO and DQN run on Ray actors)"
        )
    if run.frames is None and run.minutes is None and getattr(agent, "episodes", None) is None:
        raise ValueError(
            "budget: expected frames, minutes or both (or an agent that stops after its own "
            "number of episodes), got neither"
        )
    if run.keep_copy is not None:
        check_keep_copy(run.keep_copy, Path(resume).parent if resume else run.runs_dir)
    device = resolve_device(run.device)
    # Fail on a mismatch before starting any env worker.
    checkpoint = warm_start = None
    if resume is not None:
        run_dir = RunDir(resume)
        checkpoint = load_checkpoint(run_dir.path, device)
        check_compatible(checkpoint, *trainer_class.identity(env_config, agent))
    if init_from is not None:
        if not hasattr(trainer_class, "init_weights"):
            raise ValueError(
                f"init_from: {trainer_class.__name__} cannot start from a checkpoint "
                "(the DQN and PPO agents can)"
            )
        warm_start = load_checkpoint(init_from, device)
        check_warm_start_identity(warm_start, trainer_class, env_config, agent)
        check_warm_start(warm_start, env_config)
    seed_everything(run.seed)
    retain_freed_memory()
    trainer: Trainer = trainer_class(run, env_config, agent, device, checkpoint, **options)
    try:
        if warm_start is not None:
            trainer.init_weights(warm_start)
        if checkpoint is None:
            config = {
                "preset": preset,
                "run": asdict(run),
                "env": trainer.env_config.to_dict(),
                "agent": asdict(agent),
            }
            if warm_start is not None:
                earlier = warm_start.get("init_from") or {}
                config["init_from"] = {
                    "checkpoint": warm_start["path"],
                    "frames": int(warm_start["counters"]["frames"]) + int(earlier.get("frames", 0)),
                }
            run_dir = RunDir.create(
                run.runs_dir, trainer.env_config.level, trainer.algo, run.seed, config
            )
            logger = MetricsLogger(run_dir)
            init_record = config.get("init_from")
        else:
            set_rng_states(checkpoint["rng_states"])
            # The checkpoint's frames, not the trainer's: those already count the no-op
            # frames of the envs' fresh resets, and the episodes logged in them after the
            # checkpoint by a killed run would be kept.
            logger = MetricsLogger(run_dir, resume_frames=int(checkpoint["counters"]["frames"]))
            saved = run_dir.config()
            init_record = saved.get("init_from")
            if saved.get("run", {}).get("keep_copy") != run.keep_copy and run.keep_copy:
                # A copy started on a resume goes on at the next plain resume (and the
                # copy's own config.json, copied back after a loss, names it too).
                saved["run"] = {**saved.get("run", {}), "keep_copy": run.keep_copy}
                write_text_atomic(run_dir.path / "config.json", json.dumps(saved, indent=2) + "\n")
    except BaseException:
        trainer.close()
        raise

    # Every checkpoint carries `init_from`, so a warm start from it counts the frames before.
    def checkpoint_now() -> None:
        payload = {
            **trainer.checkpoint(run_dir),
            "init_from": init_record,
            "run_config": asdict(run),
            "preset": preset,
            "rng_states": rng_states(),
        }
        save_checkpoint(run_dir.checkpoints, trainer.frames, payload, run.keep_checkpoints)
        trainer.after_checkpoint(run_dir)
        logger.save()
        if run.keep_copy is not None:
            try:
                keep_copy_of(run_dir.path, run.keep_copy)
            except OSError as error:  # the run itself is saved: it goes on, and says so
                print(f"keep_copy: {run.keep_copy} not refreshed: {error}", file=sys.stderr)

    budget = Budget(run.frames, run.minutes, run.schedule_frames)
    progress = Progress(budget, trainer.frames, run.progress)
    next_checkpoint = run.next_checkpoint(trainer.frames)
    snapshot_starts: list[bool] = []
    last_time, last_frames = time.perf_counter(), trainer.frames
    try:
        trainer.start(run_dir, logger)
        last = trainer.done(budget)
        while not last:
            step = trainer.step(budget)
            last = step.last
            # A stop while the step is logged would checkpoint its frames with only some of
            # its episodes logged: noted, and acted on once the step is logged.
            with stop_signals_deferred() as stops:
                for end_frames, episode in step.episodes:
                    snapshot_starts.append(bool(episode.get("snapshot_start", False)))
                    if snapshot_starts[-1]:
                        continue  # the curves and episodes.csv hold only real starts
                    logger.log_episode(end_frames, episode)
                    if len(logger.rows) % SUMMARY_EVERY == 0:
                        progress.write(logger.summary(end_frames, progress.fps, **step.postfix))
                if step.scalars:
                    now = time.perf_counter()
                    scalars = dict(step.scalars)
                    # A step without frames (a CS229 evaluation) charts no speed; its time counts
                    # in the next step's.
                    if trainer.frames > last_frames:
                        seconds = max(now - last_time, 1e-9)
                        scalars["charts/fps"] = (trainer.frames - last_frames) / seconds
                        last_time, last_frames = now, trainer.frames
                    if snapshot_starts:
                        scalars["charts/snapshot_start_share"] = float(np.mean(snapshot_starts))
                        snapshot_starts.clear()
                    logger.log_scalars(trainer.frames, scalars)
                progress.update(trainer.frames, logger, **step.postfix)
            stop = step.stop if step.stop is not None else next(iter(stops), None)
            if stop is not None:
                raise stop_exception(stop)  # its checkpoint now holds the whole step
            if not last and trainer.frames >= next_checkpoint:
                checkpoint_now()
                next_checkpoint = run.next_checkpoint(trainer.frames)
        checkpoint_now()
    except KeyboardInterrupt:
        checkpoint_now()  # Ctrl-C keeps what was learned; --resume continues from it
        raise
    finally:
        progress.close()
        logger.close()
        trainer.close()
    return run_dir.path
