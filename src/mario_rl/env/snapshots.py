"""`ResetFromOwnSnapshots`: start some training episodes where the env's own best runs went.

A curriculum in the spirit of Go-Explore (Ecoffet et al. 2021, "First return, then
explore"): the agent practises the hard part of a level without replaying the easy part
first. Optionally, some episodes start shortly before one of the env's own recent deaths,
so the spots where the agent still fails (a pit it clears 80% of the time) are practised
many times per pass through the level instead of once. The states come only from this
env's own episodes (never from a human run or a search), each worker keeps its own pools
(emulator states cannot cross processes), and the wrapper is for training only: it is
not part of `EnvConfig`, so evaluation, which builds its env from the `EnvConfig`, always
starts at the level's real start. `SnapshotStarts` holds the agent settings that turn it
on (DQN's and PPO's configs inherit them).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from mario_rl.env.levels import parse_level
from mario_rl.env.wrappers import (
    EPISODE_STATS,
    START_FRAMES,
    START_LAST_ACTION,
    require_positive,
)

StepResult = tuple[np.ndarray, float, bool, bool, dict[str, Any]]


class Start(NamedTuple):
    """A moment to start from: Mario's x, the emulator state, the action the agent took
    into it (the buttons held there) and the frames its observation stacked then."""

    x: int
    state: Any
    last_action: Any = None
    frames: Any = None


@dataclass
class LevelPools:
    """One level's starts: snapshots along its best runs and shortly before its deaths,
    each a `Start`, and the furthest x of its episodes (-1 before one ends)."""

    pool: deque[Start]
    death_pool: deque[Start]
    best_x: int = -1


class ResetFromOwnSnapshots(gym.Wrapper):
    """With probability `probability`, reset to a snapshot taken along this env's best runs;
    with probability `death_probability`, to one taken shortly before a recent death.

    During every episode, each `every` agent steps in which x has grown since the last
    snapshot, the emulator state is kept with its x. When an episode ends at least as far
    right as any episode of this env before it, its snapshots, less the last `margin`
    (states shortly before a death or a stall, often past saving), join a pool of the
    `pool_size` most recent. Episodes started from a snapshot count too, so the pool can
    move past the agent's frontier. A reset draws uniformly from the pool.

    With `death_probability` > 0, when an episode ends in a death (terminated without the
    flag or a warp; a castle loop counts as a death), its last snapshot before those
    `margin` (at least `margin` x `every` + 1 steps before the death; more after a stall,
    since snapshots are taken only when x has grown) joins a second pool of the `pool_size`
    most recent such states, for the death starts. With `death_spread` > 0 that snapshot
    is drawn from the trail instead, uniformly among it and the `death_spread` before it
    (as far back as the trail goes): a death whose cause came earlier than `margin`
    snapshots before it (a jump taken too early, a path chosen seconds before the fall)
    leaves starts from before that cause too, where one that shortly precedes the death is
    past saving.
    Episodes that end by truncation do not count, nor deaths with too short a trail (a
    death within about `margin` x `every` steps of a start). A start drawn from an empty
    pool is a start at the level's start.

    With a `MarioEnv` of several levels, the pools and the best x are kept per level, and
    this wrapper draws each episode's level (uniformly) before its kind of start, so a
    level's starts come from that level's own runs.

    The env under it must be a `MarioEnv` pipeline: `unwrapped.snapshot()` and
    `reset(options={"snapshot": state})`. Randomness comes from `np_random` only.
    `info["snapshot_start"]` (at reset, and in `info["mario_episode"]` at the end) says whether
    the episode started from a snapshot; `info["snapshot_x"]` gives its x.
    """

    def __init__(
        self,
        env: gym.Env,
        probability: float,
        pool_size: int = 32,
        every: int = 8,
        margin: int = 2,
        death_probability: float = 0.0,
        death_spread: int = 0,
    ) -> None:
        super().__init__(env)
        for name, value in (("probability", probability), ("death_probability", death_probability)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a value in [0, 1], got {value}")
        if probability + death_probability > 1.0:
            raise ValueError(
                f"probability + death_probability: expected at most 1, got "
                f"{probability} + {death_probability}"
            )
        require_positive("pool_size", pool_size)
        require_positive("every", every)
        if margin < 0:
            raise ValueError(f"margin: expected >= 0, got {margin}")
        if death_spread < 0:
            raise ValueError(f"death_spread: expected >= 0, got {death_spread}")
        self.probability = probability
        self.death_probability = death_probability
        self.every = every
        self.margin = margin
        self.death_spread = death_spread
        self.pool_size = pool_size
        self._pools: dict[str, LevelPools] = {}
        # The levels episodes are drawn from (a MarioEnv's; one unnamed level otherwise).
        self._levels = [level.name for level in getattr(self.env.unwrapped, "levels", ())] or [""]
        self._level = self._levels[0]
        self._trail: list[Start] = []
        self._trail_x = 0
        self._max_x = 0
        self._steps = 0
        self._from_snapshot = False
        # The pipeline's frame stack, whose frames a snapshot keeps (none without one).
        try:
            self._stacked_frames = self.env.get_wrapper_attr("stacked_frames")
        except AttributeError:
            self._stacked_frames = None

    @property
    def current(self) -> LevelPools:
        """The pools and best x of the level being played."""
        if self._level not in self._pools:
            size = self.pool_size
            self._pools[self._level] = LevelPools(deque(maxlen=size), deque(maxlen=size))
        return self._pools[self._level]

    @property
    def pool(self) -> deque[tuple[int, Any]]:
        return self.current.pool

    @property
    def death_pool(self) -> deque[tuple[int, Any]]:
        return self.current.death_pool

    @property
    def best_x(self) -> int:
        return self.current.best_x

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        options = {k: v for k, v in (kwargs.pop("options", None) or {}).items() if v is not None}
        self._from_snapshot = False
        start_x = None
        levels = self._levels
        if "snapshot" in options:
            self._level = getattr(options["snapshot"], "level", levels[0])
        elif "level" in options:
            self._level = parse_level(options["level"]).name
        elif len(levels) > 1:
            if kwargs.get("seed") is not None:
                # Seeded before the draw, as the env under it is before its own draws.
                self.np_random, _ = seeding.np_random(kwargs["seed"])
            # The level first (one draw), so that the start is drawn from its pools.
            self._level = options["level"] = levels[int(self.np_random.integers(len(levels)))]
        else:
            self._level = levels[0]
        # No draw while both pools are empty: with death starts off, the RNG stream (shared
        # with sticky actions and no-op starts) is the one runs had before death starts.
        if "snapshot" not in options and (self.pool or self.death_pool):
            # One draw decides: [0, death) a death start, [death, death + best) a best-run start.
            draw = self.np_random.random()
            if draw < self.death_probability:
                pool = self.death_pool
            elif draw < self.death_probability + self.probability:
                pool = self.pool
            else:
                pool = None
            if pool:
                start = pool[int(self.np_random.integers(len(pool)))]
                start_x, options["snapshot"] = start.x, start.state
                options[START_LAST_ACTION] = start.last_action
                options[START_FRAMES] = start.frames
                self._from_snapshot = True
        obs, info = self.env.reset(options=options or None, **kwargs)
        self._level = info.get("level", self._level)
        self._trail = []
        self._trail_x = self._max_x = info["x_pos"]
        self._steps = 0
        info["snapshot_start"] = self._from_snapshot
        info["snapshot_x"] = start_x if start_x is not None else -1
        return obs, info

    def step(self, action: Any) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        x = info["x_pos"]
        self._max_x = max(self._max_x, x)
        if self._steps % self.every == 0 and x > self._trail_x and not (terminated or truncated):
            frames = self._stacked_frames() if self._stacked_frames else None
            self._trail.append(Start(x, self.env.unwrapped.snapshot(), action, frames))
            self._trail_x = x
        if terminated or truncated:
            # A flag or a warp is a way out; a castle loop ends the episode as a failure.
            died = terminated and info.get("exit", "loop") == "loop" and not info.get("flag_get")
            if died and self.death_probability > 0 and len(self._trail) > self.margin:
                back = self.margin
                if self.death_spread > 0:  # no draw without: the RNG stream runs had before
                    deepest = min(self.margin + self.death_spread, len(self._trail) - 1)
                    back = int(self.np_random.integers(self.margin, deepest + 1))
                self.death_pool.append(self._trail[len(self._trail) - 1 - back])
            if self._max_x >= self.best_x:
                self.current.best_x = self._max_x
                kept = self._trail[: len(self._trail) - self.margin]
                self.pool.extend(kept)
            if EPISODE_STATS in info:
                info[EPISODE_STATS]["snapshot_start"] = self._from_snapshot
        return obs, float(reward), terminated, truncated, info


def snapshot_wrapper(
    probability: float,
    pool_size: int,
    every: int,
    death_probability: float,
    death_spread: int = 0,
) -> Callable[[gym.Env], gym.Env] | None:
    """A picklable `ResetFromOwnSnapshots` maker for env workers; None when both
    probabilities are 0."""
    if probability <= 0 and death_probability <= 0:
        return None
    return functools.partial(
        ResetFromOwnSnapshots,
        probability=probability,
        pool_size=pool_size,
        every=every,
        death_probability=death_probability,
        death_spread=death_spread,
    )


@dataclass
class SnapshotStarts:
    """Training's starts from the env's own emulator states: the fields DQN's and PPO's
    configs share (both inherit them). Evaluation never uses them."""

    snapshot_start_probability: float = 0.0
    """Chance that a training episode starts from a snapshot of the env's own best runs
    (`ResetFromOwnSnapshots`; 0: always the level's start)."""
    death_start_probability: float = 0.0
    """Chance that a training episode starts from a snapshot taken shortly before one of
    the env's own recent deaths (0: never); at most 1 - `snapshot_start_probability`."""
    death_start_spread: int = 0
    """How many snapshots further back than the shortest depth a death start may be drawn
    from, uniformly (0: always the shortest, about 17-24 steps before the death with
    `snapshot_every` 8): where a death's cause comes earlier (1-3's jump is lost 18-24
    steps before the fall), the shortest depth only practises positions past saving."""
    snapshot_pool: int = 32
    """Snapshots each env keeps for such starts (each kind)."""
    snapshot_every: int = 8
    """Agent steps of each env between snapshots along its episode."""

    def __post_init__(self) -> None:
        """A ValueError naming the field, at config time rather than when the workers start."""
        starts, death_starts = self.snapshot_start_probability, self.death_start_probability
        if not 0.0 <= starts <= 1.0:
            raise ValueError(f"snapshot_start_probability: expected 0..1, got {starts}")
        if not 0.0 <= death_starts <= 1.0:
            raise ValueError(f"death_start_probability: expected 0..1, got {death_starts}")
        if starts + death_starts > 1.0:
            raise ValueError(
                f"snapshot_start_probability + death_start_probability: expected at most 1, "
                f"got {starts} + {death_starts}; lower --snapshot-starts or --death-starts"
            )
        require_positive("snapshot_pool", self.snapshot_pool)
        require_positive("snapshot_every", self.snapshot_every)
        spread = self.death_start_spread
        if isinstance(spread, bool) or not isinstance(spread, int) or spread < 0:
            raise ValueError(f"death_start_spread: expected an integer >= 0, got {spread!r}")
        if spread > 0 and death_starts == 0:
            raise ValueError(
                f"death_start_spread: {spread} spreads the death starts, which are off "
                "(death_start_probability 0); set --death-starts too"
            )


def snapshot_wrapper_for(config: SnapshotStarts) -> Callable[[gym.Env], gym.Env] | None:
    """`snapshot_wrapper` with an agent config's settings."""
    return snapshot_wrapper(
        config.snapshot_start_probability,
        config.snapshot_pool,
        config.snapshot_every,
        config.death_start_probability,
        config.death_start_spread,
    )
