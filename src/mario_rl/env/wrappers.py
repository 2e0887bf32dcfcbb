"""Gymnasium wrappers for the Mario pipeline, each one change, named after what it changes.

Every observation a wrapper hands out is a fresh array that no later step overwrites.
Frame-level wrappers (sticky actions, no-op starts) go directly on `MarioEnv`; the rest go
on top of a frame skip or an action span. `mario_rl.env.pipeline.make_env` stacks them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces
from tqdm import tqdm

from mario_rl.env.core import DEATH_PENALTY

StepResult = tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]


def _uint8_box(shape: tuple[int, ...]) -> spaces.Box:
    return spaces.Box(0, 255, shape, np.uint8)


def require_positive(name: str, value: int) -> None:
    if not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def _with_death(info: dict[str, Any], death: str | None) -> dict[str, Any]:
    """The last frame's `info`, with the `death` of any frame of the step: in the full game
    a life lost inside a step is followed by the next life's frames, whose info has none."""
    if death is not None:
        info["death"] = death
    return info


class MaxPoolSkipFrames(gym.Wrapper):
    """Repeat each action for `skip` frames, sum the rewards, max-pool the last `pool` frames.

    Max-pooling the last two frames removes the flicker of sprites the NES draws on
    alternate frames (DQN, Mnih et al. 2015, "Methods: preprocessing").
    `info["frames"]` keeps counting emulator frames, so budgets stay in frames.
    """

    def __init__(self, env: gym.Env, skip: int = 4, pool: int = 2) -> None:
        super().__init__(env)
        require_positive("skip", skip)
        require_positive("pool", pool)
        if pool > skip:
            raise ValueError(f"pool: expected at most skip={skip} frames, got {pool}")
        self.skip = skip
        self.pool = pool

    def step(self, action: Any) -> StepResult:
        total_reward = 0.0
        death = None
        recent: deque[np.ndarray] = deque(maxlen=self.pool)
        for _ in range(self.skip):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total_reward += float(reward)
            death = info.get("death", death)
            recent.append(obs)
            if terminated or truncated:
                break
        pooled = recent[0] if len(recent) == 1 else np.maximum.reduce(recent)
        return pooled, total_reward, terminated, truncated, _with_death(info, death)


class ActionSpanKeepFrames(gym.Wrapper):
    """Repeat each action for `span` frames and stack the frames at positions `keep` (1-based).

    The curiosity write-up spans 12 frames and keeps frames 4, 8 and 12, so one observation
    shows motion. If the episode ends inside the span, the last frame fills the missing ones.
    Observations become (len(keep), *frame_shape).
    """

    def __init__(self, env: gym.Env, span: int = 12, keep: Sequence[int] = (4, 8, 12)) -> None:
        super().__init__(env)
        require_positive("span", span)
        keep = tuple(int(k) for k in keep)
        if not keep or list(keep) != sorted(set(keep)) or keep[0] < 1 or keep[-1] > span:
            raise ValueError(
                f"keep: expected increasing frame positions within 1..{span}, got {keep}"
            )
        self.span = span
        self.keep = keep
        frame_shape = env.observation_space.shape
        self.observation_space = _uint8_box((len(keep), *frame_shape))

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return np.stack([obs] * len(self.keep)), info

    def step(self, action: Any) -> StepResult:
        kept: list[np.ndarray] = []
        total_reward = 0.0
        death = None
        for position in range(1, self.span + 1):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total_reward += float(reward)
            death = info.get("death", death)
            if position in self.keep:
                kept.append(obs)
            if terminated or truncated:
                break
        kept.extend([obs] * (len(self.keep) - len(kept)))
        return np.stack(kept), total_reward, terminated, truncated, _with_death(info, death)


class GrayscaleObservation(gym.ObservationWrapper):
    """RGB (H, W, 3) to grayscale (H, W) with OpenCV's luma weights.

    `MarioEnv(obs_type="gray")` does the same inside the emulator and is faster; this
    wrapper is for pipelines that need colour first (recording, custom crops).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        shape = env.observation_space.shape
        if len(shape) != 3 or shape[-1] != 3:
            raise ValueError(f"expected an RGB observation of shape (H, W, 3), got {shape}")
        self.observation_space = _uint8_box(shape[:2])

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(observation, cv2.COLOR_RGB2GRAY)


class CropRowsObservation(gym.ObservationWrapper):
    """Drop `top` and `bottom` rows of grayscale frames shaped (..., H, W) (score bar, floor)."""

    def __init__(self, env: gym.Env, top: int = 0, bottom: int = 0) -> None:
        super().__init__(env)
        shape = env.observation_space.shape
        height = shape[-2]
        if top < 0 or bottom < 0 or top + bottom >= height:
            raise ValueError(
                f"crop: expected top, bottom >= 0 leaving at least one of {height} rows, "
                f"got top={top}, bottom={bottom}"
            )
        self.top = top
        self.stop = height - bottom
        self.observation_space = _uint8_box((*shape[:-2], self.stop - top, shape[-1]))

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(observation[..., self.top : self.stop, :])


class ShowLastAction(gym.Wrapper):
    """Paint the previous action into the top rows of each frame, as a one-hot strip.

    The NES starts a jump only when A is newly pressed, and no frame shows what is held: a
    greedy policy that sees Mario standing at a wall with A held sees the same frames after
    every step, picks the same action, and stands there for good (4 of the 7 sticky-action
    failures of the first bundled sticky agent). With the strip the policy can tell "A held"
    from "A released" and learn to let go. Recurrent agents feed the last action for the
    same reason (R2D2, Kapturowski et al. 2019).

    Action `i` of `n` lights columns `i*W//n .. (i+1)*W//n - 1` of the top `rows` rows (255;
    the rest of the strip 0; all 0 after a reset, when nothing is held); the rows replaced
    show only the sky above the score line.
    Frames shaped (H, W) or (K, H, W) (every frame of the span is marked).
    """

    def __init__(self, env: gym.Env, rows: int = 0) -> None:
        super().__init__(env)
        shape = env.observation_space.shape
        if not isinstance(env.action_space, spaces.Discrete):
            raise ValueError(f"expected a discrete action space, got {env.action_space}")
        if len(shape) not in (2, 3):
            raise ValueError(f"expected frames shaped (H, W) or (K, H, W), got {shape}")
        height, width = shape[-2:]
        self.actions = int(env.action_space.n)
        if self.actions > width:
            raise ValueError(f"{self.actions} actions do not fit in a strip {width} pixels wide")
        self.rows = rows or max(1, height // 21)
        if self.rows >= height:
            raise ValueError(f"rows: expected fewer than the frame's {height} rows, got {rows}")
        edges = [i * width // self.actions for i in range(self.actions + 1)]
        # One strip per action, and a last, dark one for "nothing yet" after a reset.
        self._strips = np.zeros((self.actions + 1, self.rows, width), np.uint8)
        for action in range(self.actions):
            self._strips[action, :, edges[action] : edges[action + 1]] = 255

    def _marked(self, observation: np.ndarray, action: int) -> np.ndarray:
        marked = observation.copy()
        marked[..., : self.rows, :] = self._strips[action]
        return marked

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        # A start from a snapshot shows the action taken into it (`START_LAST_ACTION`).
        last = reset_option(kwargs, START_LAST_ACTION)
        return self._marked(obs, self.actions if last is None else int(last)), info

    def step(self, action: Any) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._marked(obs, int(action)), reward, terminated, truncated, info


class ResizeObservation(gym.ObservationWrapper):
    """Resize grayscale frames shaped (H, W) or (K, H, W) to `shape` = (height, width).

    Area averaging (OpenCV's INTER_AREA) keeps thin sprites visible at 84x84.
    """

    def __init__(self, env: gym.Env, shape: tuple[int, int] = (84, 84)) -> None:
        super().__init__(env)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape: expected (height, width) of positive sizes, got {shape}")
        old_shape = env.observation_space.shape
        if len(old_shape) not in (2, 3):
            raise ValueError(f"expected frames shaped (H, W) or (K, H, W), got {old_shape}")
        self.shape = (int(shape[0]), int(shape[1]))
        self._stacked = len(old_shape) == 3
        self.observation_space = _uint8_box((*old_shape[:-2], *self.shape))

    def observation(self, observation: np.ndarray) -> np.ndarray:
        height, width = self.shape
        if not self._stacked:
            return cv2.resize(observation, (width, height), interpolation=cv2.INTER_AREA)
        # OpenCV resizes channels-last images: move the stack axis there and back.
        resized = cv2.resize(
            np.moveaxis(observation, 0, -1), (width, height), interpolation=cv2.INTER_AREA
        )
        return np.ascontiguousarray(np.moveaxis(resized.reshape(height, width, -1), -1, 0))


class FrameStackObservation(gym.Wrapper):
    """Stack the last `stack` frames along a new first axis: (stack, H, W), newest last.

    At reset the first frame fills the stack, as the DQN paper does; a start from a
    snapshot (`ResetFromOwnSnapshots`) passes the frames stacked when it was taken instead
    (reset option `START_FRAMES`), so that a Mario restored mid-jump is seen rising or
    falling from the first step. Each observation is a new array; the wrapper keeps only
    `stack` frames of history.
    """

    def __init__(self, env: gym.Env, stack: int = 4) -> None:
        super().__init__(env)
        require_positive("stack", stack)
        self.stack = stack
        self._frames: deque[np.ndarray] = deque(maxlen=stack)
        self.observation_space = _uint8_box((stack, *env.observation_space.shape))

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        frames = reset_option(kwargs, START_FRAMES)
        if frames is not None and len(frames) == self.stack:
            self._frames.extend(frames)
        else:
            self._frames.extend([obs] * self.stack)
        return np.stack(self._frames), info

    def step(self, action: Any) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._frames.append(obs)
        return np.stack(self._frames), reward, terminated, truncated, info

    def stacked_frames(self) -> tuple[np.ndarray, ...]:
        """The frames the last observation stacked, oldest first (each step's frame is a
        new array, never written to again)."""
        return tuple(self._frames)


class ClipRewardSign(gym.RewardWrapper):
    """Rewards become -1, 0 or +1 (DQN's reward clipping), so one learning rate fits all levels."""

    def reward(self, reward: SupportsFloat) -> float:
        return float(np.sign(float(reward)))


class ScaleObservation(gym.ObservationWrapper):
    """uint8 [0, 255] to float32 [0, 1]."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = spaces.Box(0.0, 1.0, env.observation_space.shape, np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation.astype(np.float32) * np.float32(1.0 / 255.0)


@dataclass(frozen=True)
class ObservationStats:
    """A per-pixel mean and a scalar std of observations, for normalisation."""

    mean: np.ndarray
    std: float

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObservationStats:
        return cls(np.asarray(data["mean"], np.float32), float(data["std"]))


def measure_observation_stats(
    env: gym.Env, moves: int, seed: int | None, progress: bool = False
) -> ObservationStats:
    """Play `moves` uniformly random moves from the level's start; average what is seen.

    The std is one number over all pixels and moves: sqrt(E[x^2] - E[x]^2). `progress`
    shows a bar: the curiosity write-up's 10,000 moves take a minute or more on a CPU
    before training starts.
    """
    require_positive("moves", moves)
    total = np.zeros(env.observation_space.shape, np.float64)
    total_sq = 0.0
    env.reset(seed=seed)
    env.action_space.seed(seed)
    bar = tqdm(
        range(moves),
        desc="random moves for the observation normalisation",
        unit="move",
        dynamic_ncols=True,
        disable=not progress,
        leave=False,
    )
    for _ in bar:
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        pixels = obs.astype(np.float64)
        total += pixels
        total_sq += float(np.mean(pixels**2))
        if terminated or truncated:
            env.reset()
    mean = total / moves
    variance = total_sq / moves - float(np.mean(mean)) ** 2
    return ObservationStats(mean.astype(np.float32), float(np.sqrt(max(variance, 0.0))))


class NormalizeObservation(gym.ObservationWrapper):
    """(obs - per-pixel mean) / scalar std, with `stats` measured once beforehand.

    The curiosity write-up measures them over 10,000 random moves at the start of the level
    (`measure_observation_stats`) and freezes them, so the policy's input scale stays fixed
    while it learns. Every worker and evaluation must use the same stats: measure once, pass
    them in, save them with the checkpoint.
    """

    def __init__(self, env: gym.Env, stats: ObservationStats) -> None:
        super().__init__(env)
        shape = env.observation_space.shape
        if stats.mean.shape != shape:
            raise ValueError(f"stats.mean: expected shape {shape}, got {stats.mean.shape}")
        self.mean = stats.mean.astype(np.float32)
        self.std = np.float32(max(stats.std, 1e-6))
        self.observation_space = spaces.Box(-np.inf, np.inf, shape, np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return (observation.astype(np.float32) - self.mean) / self.std


class NoopStart(gym.Wrapper):
    """Start each episode with a random number (0..`max_noops`) of no-op steps.

    Put it on the frame-level env so the count is in frames. On its own it does not stop a
    memorised button sequence: NES 1-1 is not perturbed by it (the observations after 25
    and 26 no-ops are byte-identical, and a blind replay of one cleared episode clears
    after other no-op counts too). Evaluation adds `StickyAction` (docs/architecture.md, section 3).
    """

    def __init__(self, env: gym.Env, max_noops: int = 30, noop_action: int = 0) -> None:
        super().__init__(env)
        if max_noops < 0:
            raise ValueError(f"max_noops: expected >= 0, got {max_noops}")
        self.max_noops = max_noops
        self.noop_action = noop_action

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        if reset_option(kwargs, "snapshot") is not None:
            # A snapshot is a moment of play (Mario running, mid-jump): released buttons
            # there are a pause play never has. No-ops perturb the level's own start only.
            info["noops"] = 0
            return obs, info
        noops = int(self.np_random.integers(0, self.max_noops + 1))
        for _ in range(noops):
            obs, _, terminated, truncated, info = self.env.step(self.noop_action)
            if terminated or truncated:
                # The same start again (a level of several), not a new draw.
                obs, info = self.env.reset(options=kwargs.get("options"))
        info["noops"] = noops
        return obs, info


def reset_option(reset_kwargs: dict[str, Any], name: str) -> Any:
    """The reset option `name` among a wrapper's `reset(**kwargs)`, or None."""
    return (reset_kwargs.get("options") or {}).get(name)


START_LAST_ACTION = "last_action"
"""The reset option naming the action taken into a snapshot (`ResetFromOwnSnapshots`):
the controller's state there, which `StickyAction` goes on holding and `ShowLastAction`
shows, where a fresh start has released buttons."""

START_FRAMES = "stacked_frames"
"""The reset option holding the frames `FrameStackObservation` had stacked when a
snapshot was taken (`ResetFromOwnSnapshots`), which a start from it stacks again."""

EVAL_STICKY = 0.25
"""Per-frame probability of repeating the previous action in evaluation (the ALE's,
Machado et al. 2018); every command that evaluates defaults to it."""


class StickyAction(gym.Wrapper):
    """With probability `repeat_probability`, the previous action is repeated instead.

    Machado et al. (2018) use 0.25 per frame to keep deterministic emulators from rewarding
    memorised button sequences. At an episode's start the previous action is `noop_action`
    (a controller at rest: pass the action set's no-op, `actions.noop_index`).
    """

    def __init__(
        self, env: gym.Env, repeat_probability: float = 0.25, noop_action: int = 0
    ) -> None:
        super().__init__(env)
        if not 0.0 <= repeat_probability < 1.0:
            raise ValueError(
                f"repeat_probability: expected a value in [0, 1), got {repeat_probability}"
            )
        self.repeat_probability = repeat_probability
        self.noop_action = noop_action
        self._last_action: Any = noop_action

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        # A start from a snapshot goes on holding the action taken into it, as play would.
        last = reset_option(kwargs, START_LAST_ACTION)
        self._last_action = self.noop_action if last is None else last
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> StepResult:
        if self.np_random.random() >= self.repeat_probability:
            self._last_action = action
        return self.env.step(self._last_action)


class TerminateOnLifeLoss(gym.Wrapper):
    """End the episode (`terminated`) when Mario loses a life.

    Single-level envs already end on death; this matters for the full game, where the
    game itself only ends at game over.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._lives = 0

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._lives = info["life"]
        return obs, info

    def step(self, action: Any) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = info["life"]
        # 255 is the game's "no lives left" value: also a loss.
        if lives < self._lives or (lives == 255 and self._lives != 255):
            terminated = True
        self._lives = lives
        return obs, reward, terminated, truncated, info


class TruncateOnNoProgress(gym.Wrapper):
    """Truncate the episode when the best x has not grown for `patience` steps.

    Stuck episodes (pressing against a pipe until the clock runs out) cost thousands of
    frames and teach nothing. The cut is `truncated`, not `terminated`: the state is not
    terminal, so value-based learners still bootstrap from it.

    The best x is kept per area (`info["area"]`, where the env reports one): a pipe into a
    bonus room or a level's exit area restarts x, and walking there is progress even below
    the best x of the area left behind. Entering an area counts as progress.

    With `as_death`, the cut ends the episode as a death instead: `terminated`, with the
    death penalty added to the step's reward (`core.DEATH_PENALTY`), so that wrappers that
    act on deaths take the stall for one (`ResetFromOwnSnapshots` then starts episodes
    shortly before it, on the approach). The penalty itself lands `patience` steps after
    the last progress, too late to teach much to the steps that walked into the stall
    (0.9^100 is 3e-5). `info["no_progress"]` is set either way.
    """

    def __init__(self, env: gym.Env, patience: int = 200, as_death: bool = False) -> None:
        super().__init__(env)
        require_positive("patience", patience)
        self.patience = patience
        self.as_death = as_death
        self._best_x: dict[Any, int] = {}
        self._area: Any = None
        self._steps_since_best = 0

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._area = info.get("area")
        self._best_x = {self._area: info["x_pos"]}
        self._steps_since_best = 0
        return obs, info

    def step(self, action: Any) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(action)
        area, x = info.get("area"), info["x_pos"]
        best = self._best_x.get(area)
        if area != self._area or best is None or x > best:
            self._best_x[area] = x if best is None else max(x, best)
            self._area = area
            self._steps_since_best = 0
        else:
            self._steps_since_best += 1
        if self._steps_since_best >= self.patience and not terminated:
            info["no_progress"] = True
            if self.as_death:
                terminated, reward = True, float(reward) + DEATH_PENALTY
            else:
                truncated = True
        return obs, reward, terminated, truncated, info


EPISODE_STATS = "mario_episode"
"""The `info` key of mario-rl's own episode totals (beside Gymnasium's `info["episode"]`)."""


class EpisodeStatistics(gym.Wrapper):
    """At an episode's end, `info["episode"]` and `info["mario_episode"]` hold its totals.

    `info["episode"]` follows Gymnasium's `RecordEpisodeStatistics` (and Stable-Baselines3's
    Monitor, which may overwrite it): r (return), l (length), t (wall seconds of the
    episode). `info["mario_episode"]` (`EPISODE_STATS`) keeps the project's own: return (the
    reward seen by this wrapper, before any clipping above it), length (agent steps), frames
    (emulator frames), max_x, flag (reached the flag), time_left (game clock), score, level
    (the level's name, when the env says it).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._return = 0.0
        self._length = 0
        self._max_x = 0
        self._started = time.perf_counter()

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._return = 0.0
        self._length = 0
        self._max_x = info["x_pos"]
        self._started = time.perf_counter()
        return obs, info

    def step(self, action: Any) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        self._length += 1
        self._max_x = max(self._max_x, info["x_pos"])
        if terminated or truncated:
            info["episode"] = {
                "r": self._return,
                "l": self._length,
                "t": round(time.perf_counter() - self._started, 6),
            }
            info[EPISODE_STATS] = {
                "return": self._return,
                "length": self._length,
                "frames": info["frames"],
                "max_x": self._max_x,
                "flag": bool(info["flag_get"]),
                "time_left": info["time"],
                "score": info["score"],
            }
            if "level" in info:
                info[EPISODE_STATS]["level"] = info["level"]
        return obs, reward, terminated, truncated, info
