"""`EnvConfig` and `make_env`: the whole observation and reward pipeline from one dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import gymnasium as gym

from mario_rl.env.actions import noop_index
from mario_rl.env.core import MarioEnv
from mario_rl.env.levels import parse_level
from mario_rl.env.wrappers import (
    ActionSpanKeepFrames,
    ClipRewardSign,
    CropRowsObservation,
    EpisodeStatistics,
    FrameStackObservation,
    MaxPoolSkipFrames,
    NoopStart,
    NormalizeObservation,
    ObservationStats,
    ResizeObservation,
    ScaleObservation,
    ShowLastAction,
    StickyAction,
    TerminateOnLifeLoss,
    TruncateOnNoProgress,
    measure_observation_stats,
)


@dataclass
class EnvConfig:
    """How to build one Mario environment. The defaults are the DQN (Nature) pipeline."""

    level: str = "1-1"
    """Level name (`1-1` ... `8-4`, `full`, or `SuperMarioBros-1-1-v0`)."""
    levels: tuple[str, ...] = ()
    """More levels to train on: each episode plays one of `level` and these, drawn
    uniformly (`MarioEnv`); empty: `level` alone. Evaluation plays one level."""
    actions: str = "simple"
    """Action set name; see `mario-rl actions`."""
    frame_skip: int = 4
    """Frames each action is held for (the action span)."""
    pool_frames: int = 2
    """Max-pool the last this many frames of the span (ignored when `keep_frames` is set)."""
    keep_frames: tuple[int, ...] = ()
    """If set, stack these 1-based frames of the span instead of pooling (curiosity: 4, 8, 12)."""
    resize: tuple[int, int] = (84, 84)
    """(height, width) after resizing the 240x256 grayscale frame."""
    crop_top: int = 0
    """Rows dropped from the top of the resized frame."""
    crop_bottom: int = 0
    """Rows dropped from the bottom of the resized frame."""
    frame_stack: int = 4
    """Stack this many successive observations (1: none)."""
    clip_rewards: bool = False
    """Rewards to their sign (-1, 0, 1)."""
    scale: bool = False
    """Hand out float32 in [0, 1] instead of uint8 (agents usually scale on the device)."""
    normalize_moves: int = 0
    """If > 0: normalise by a per-pixel mean and scalar std from this many random moves."""
    noop_max: int = 0
    """Random 0..noop_max no-op frames at each reset."""
    sticky_probability: float = 0.0
    """Per-frame probability of repeating the previous action."""
    end_on_life_loss: bool = False
    """End the episode when a life is lost (matters for the full game)."""
    no_progress_steps: int = 0
    """If > 0: truncate an episode whose best x has not grown for this many agent steps."""
    no_progress_is_death: bool = False
    """End such an episode as a death (terminated, death penalty) instead of truncating
    it (`TruncateOnNoProgress`'s `as_death`); for training, evaluation never sets it."""
    show_last_action: bool = False
    """Paint the previous action into the top rows of each frame (`ShowLastAction`)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes saved with the config; not read by the pipeline."""

    def __post_init__(self) -> None:
        parse_level(self.level)
        self.levels = tuple(parse_level(level).name for level in self.levels)
        self.resize = tuple(self.resize)
        self.keep_frames = tuple(self.keep_frames)

    @property
    def frames_per_step(self) -> int:
        return self.frame_skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def perturbed_starts(env: gym.Env, config: EnvConfig) -> gym.Env:
    """`env` (frame-level) with `config`'s sticky actions and no-op starts, both resting on
    the action set's own no-op: index 0 is left in `lnr` and left+A+B in `cs229`."""
    noop = noop_index(config.actions)
    if config.sticky_probability > 0:
        env = StickyAction(env, config.sticky_probability, noop_action=noop)
    if config.noop_max > 0:
        env = NoopStart(env, config.noop_max, noop_action=noop)
    return env


def make_env(
    config: EnvConfig,
    seed: int | None = None,
    render_mode: str | None = None,
    obs_stats: ObservationStats | None = None,
) -> gym.Env:
    """Build the pipeline `config` describes. `seed` seeds the first reset and the wrappers.

    With `config.normalize_moves > 0`, pass `obs_stats` from `measure_obs_stats` (measured
    once and shared); without them this env measures its own, which is slow.
    """
    env: gym.Env = MarioEnv(
        config.level,
        config.actions,
        obs_type="gray",
        render_mode=render_mode,
        levels=config.levels,
    )
    env = perturbed_starts(env, config)
    if config.keep_frames:
        env = ActionSpanKeepFrames(env, config.frame_skip, config.keep_frames)
    else:
        env = MaxPoolSkipFrames(env, config.frame_skip, min(config.pool_frames, config.frame_skip))
    if config.end_on_life_loss:
        env = TerminateOnLifeLoss(env)
    if config.no_progress_steps > 0:
        env = TruncateOnNoProgress(
            env, config.no_progress_steps, as_death=config.no_progress_is_death
        )
    env = EpisodeStatistics(env)
    env = ResizeObservation(env, config.resize)
    if config.crop_top or config.crop_bottom:
        env = CropRowsObservation(env, config.crop_top, config.crop_bottom)
    if config.show_last_action:
        env = ShowLastAction(env)
    if config.frame_stack > 1:
        env = FrameStackObservation(env, config.frame_stack)
    if config.normalize_moves > 0:
        if obs_stats is None:
            obs_stats = measure_observation_stats(env, config.normalize_moves, seed)
        env = NormalizeObservation(env, obs_stats)
    elif config.scale:
        env = ScaleObservation(env)
    if config.clip_rewards:
        env = ClipRewardSign(env)
    env.action_space.seed(seed)
    if seed is not None:
        env.reset(seed=seed)
    return env


def measure_obs_stats(
    config: EnvConfig, seed: int | None = None, progress: bool = False
) -> ObservationStats:
    """The normalisation stats of `config`: `config.normalize_moves` random moves, measured
    once (`progress`: with a progress bar)."""
    if config.normalize_moves < 1:
        raise ValueError(
            f"normalize_moves: expected > 0 to measure stats, got {config.normalize_moves}"
        )
    unnormalized = replace(config, normalize_moves=0, scale=False)
    env = make_env(unnormalized)
    try:
        return measure_observation_stats(env, config.normalize_moves, seed, progress)
    finally:
        env.close()
