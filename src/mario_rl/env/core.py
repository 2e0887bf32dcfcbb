"""`MarioEnv`: one NES frame per step, a discrete action set, and a lean reward and info.

`gym_super_mario_bros.SuperMarioBrosEnv.step` builds a 30-entry info dict and a seven-part
reward every frame, which costs about 13% of the emulator's speed. This env keeps that
package's emulator, start-screen skipping and death/transition skipping, but reads only the
few RAM bytes the reward, termination and info need, so wrappers stacked on it stay close
to the raw emulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import gymnasium as gym
import numpy as np
from gym_super_mario_bros import SuperMarioBrosEnv
from gymnasium import spaces
from nes_py.nes_env import SCREEN_HEIGHT, SCREEN_WIDTH

from mario_rl.env.actions import action_bytes, action_set, buttons_to_byte
from mario_rl.env.levels import Level, parse_level
from mario_rl.env.ram import (
    AREA_INDEX,
    AREA_TYPE,
    CLOUD_AREA,
    COIN_DIGITS,
    ENTRANCE_MODE,
    LEAVING_CLOUD,
    LIVES,
    PLAYER_DEAD,
    PLAYER_DYING,
    PLAYER_PAGE,
    PLAYER_STATE,
    PLAYER_X,
    PLAYER_Y_PIXEL,
    PLAYER_Y_VIEWPORT,
    POWER,
    SCORE_DIGITS,
    SCREEN_LEFT_PAGE,
    STAGE,
    TIME_DIGITS,
    TIMER_EXPIRED,
    WORLD,
    below_screen,
    package_y,
)

ObsType = Literal["rgb", "gray"]
DeathCause = Literal["fell", "hit", "time"]
"""How a life was lost (`info["death"]`): below the screen, the clock, anything else."""

# The classic gym-super-mario-bros reward (v7 and earlier, used by all five write-ups):
# x progress + clock tick + death penalty, clipped to [-15, 15].
DEATH_PENALTY = -15.0
REWARD_LIMIT = 15.0
# x jumps by more than this in one frame only on warps and pipe exits: not progress.
MAX_X_STEP_PER_FRAME = 5

_STATUS_NAMES = ("small", "tall", "fireball")


class LevelSnapshot(NamedTuple):
    """An emulator state (`MarioEnv.snapshot`) and the level it belongs to."""

    level: str
    state: Any


class MarioEnv(gym.Env[np.ndarray, np.int64]):
    """Super Mario Bros. 1 at one frame per step with a named action set.

    Observations are fresh copies (never views of the emulator's screen buffer), full-size:
    240x256x3 RGB or 240x256 grayscale (the emulator's native grayscale copy).
    `info` holds x_pos, y_pos, time, flag_get, world, stage, life, status, score, coins,
    `area` (the area Mario is in, as RAM names it: type * 256 + index; x is only comparable
    within one area, since pipes and bonus rooms restart it), `level` (the level's name) and
    `frames` (emulator frames since reset). `reset(options={"snapshot": s})` starts from a
    state taken with `snapshot()` instead of the level's start.

    With more `levels`, each episode plays one of `level` and those, drawn uniformly from
    the env's seeded RNG at reset (`options={"level": name}` picks one; a snapshot brings
    its own). Each level keeps its own emulator, built on first use.

    A single level's episode ends at a death, at the flag (or axe), and also:
    - at a **warp**: the world or stage in RAM is no longer the level's (the game writes the
      new one when Mario enters a warp pipe); no penalty, and `info["exit"]` says where to,
      e.g. `"warp 4-1"` (evaluation counts it as a clear, as a player would);
    - at a **castle loop** (4-4, 7-4, 8-4 on the wrong path): the game sends Mario back 4
      pages, moving his page and the screen's left page down by 4 in one frame, which
      nothing else does (SMB1 never scrolls left). It ends as a failure, with the death
      penalty and `info["exit"] = "loop"`: re-walking the same ground would otherwise pay
      the x reward again (docs/level-mechanics.md, section 2). Its `x_pos` is Mario's x
      before he was sent back.
    The flag sets `info["exit"] = "flag"`. A death sets `info["death"]` to how the life was
    lost, from RAM on the frame it began: `"fell"` below the screen (a pit, lava), `"time"`
    (the clock ran out) or `"hit"` (anything else: an enemy, its fire). Falling off the bottom
    of a coin-heaven (cloud) area is the game's way back down to the level, not a death
    (the package's own check calls it one), so the episode goes on there.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 60}

    def __init__(
        self,
        level: str | Level = "1-1",
        actions: str | Sequence[Sequence[str]] = "simple",
        obs_type: ObsType = "rgb",
        render_mode: str | None = None,
        levels: Sequence[str | Level] = (),
    ) -> None:
        if obs_type not in ("rgb", "gray"):
            raise ValueError(f"obs_type: expected 'rgb' or 'gray', got {obs_type!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode: expected None or 'rgb_array', got {render_mode!r}")
        self.levels: list[Level] = []
        for each in (level, *levels):
            parsed = parse_level(each)
            if parsed not in self.levels:
                self.levels.append(parsed)
        if len(self.levels) > 1 and any(each.is_full_game for each in self.levels):
            raise ValueError(
                f"levels: expected single levels to draw episodes from, got "
                f"{', '.join(each.name for each in self.levels)} (the full game is one already)"
            )
        if isinstance(actions, str):
            self.action_set_name = actions
            self.action_buttons = [tuple(combo) for combo in action_set(actions)]
            self._action_bytes = action_bytes(actions)
        else:
            self.action_set_name = "custom"
            self.action_buttons = [tuple(combo) for combo in actions]
            self._action_bytes = [buttons_to_byte(combo) for combo in self.action_buttons]
        if not self._action_bytes:
            raise ValueError("actions: expected at least one button combination, got none")
        self.obs_type = obs_type
        self.render_mode = render_mode
        self._emulators: dict[str, SuperMarioBrosEnv] = {}
        self._use(self.levels[0])
        self.action_space = spaces.Discrete(len(self._action_bytes))
        shape = (
            (SCREEN_HEIGHT, SCREEN_WIDTH, 3) if obs_type == "rgb" else (SCREEN_HEIGHT, SCREEN_WIDTH)
        )
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self._observation_mode = "rgb_array_contiguous" if obs_type == "rgb" else "grayscale"
        self._x_last = 0
        self._time_last = 0
        self._pages_last = (0, 0, 0, 0)
        self._frames = 0
        self._done = True

    # -- Gymnasium API -------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        snapshot = options.get("snapshot")
        if snapshot is not None:
            self._use(self._known_level(snapshot.level))
        elif options.get("level") is not None:
            self._use(self._known_level(options["level"]))
        elif len(self.levels) > 1:
            self._use(self.levels[int(self.np_random.integers(len(self.levels)))])
        self.emulator.reset()
        if snapshot is not None:
            self.emulator.load_state(snapshot.state)
        self._x_last = self._x_pos()
        self._time_last = self._time()
        self._pages_last = self._pages()
        self._frames = 0
        self._done = False
        return self._observe(), self._info(flag_get=False)

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._done:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        emulator = self.emulator
        emulator._frame_advance(self._action_bytes[int(action)])
        self._frames += 1

        x_pos = self._x_pos()
        x_before, self._x_last = self._x_last, x_pos
        x_step = x_pos - x_before
        if abs(x_step) > MAX_X_STEP_PER_FRAME:
            x_step = 0
        time_left = self._time()
        clock_tick = min(time_left - self._time_last, 0)
        self._time_last = time_left
        dying = self._dying()
        # Read before the death animation is skipped, which moves Mario and the clock.
        death_cause = self._death_cause() if dying else None
        flag_get = emulator._flag_get
        exit_taken = "flag" if flag_get else None
        if not self.level.is_full_game and not dying and not flag_get:
            exit_taken = self._level_exit()
        looped = exit_taken == "loop"
        if looped:
            # Where Mario got to is where he was before the game sent him back, to a page
            # that can wrap below 0 (4-4: page 3 -> 0xFF, x 65535): info, episode statistics
            # and the snapshot pool's best x must not read that.
            self._x_last = x_before
        reward = x_step + clock_tick + (DEATH_PENALTY if dying or looped else 0.0)
        reward = float(min(max(reward, -REWARD_LIMIT), REWARD_LIMIT))

        if self.level.is_full_game:
            terminated = emulator._is_game_over
        else:
            terminated = dying or exit_taken is not None
        self._skip_frames_without_play(terminated, dying)
        self._done = terminated
        info = self._info(flag_get)
        if exit_taken is not None:
            info["exit"] = exit_taken
        if dying:
            info["death"] = death_cause
        return self._observe(), reward, terminated, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return self.screen_rgb()
        return None

    def close(self) -> None:
        for emulator in self._emulators.values():
            if emulator._env is not None:
                emulator.close()

    # -- extras used by wrappers, evaluation and snapshot starts ------------------------------

    def screen_rgb(self) -> np.ndarray:
        """A copy of the full-colour 240x256x3 screen."""
        return self.emulator.observation("rgb_array_contiguous")

    def snapshot(self) -> LevelSnapshot:
        """The emulator's state now, which `reset(options={"snapshot": ...})` restores."""
        return LevelSnapshot(self.level.name, self.emulator.dump_state())

    @property
    def frames(self) -> int:
        """Emulator frames advanced by `step` since the last reset."""
        return self._frames

    def action_meanings(self) -> list[str]:
        return ["+".join(combo) for combo in self.action_buttons]

    # -- levels ---------------------------------------------------------------------------

    def _use(self, level: Level) -> None:
        """Play `level` from the next reset on, on its own emulator."""
        if level.name not in self._emulators:
            self._emulators[level.name] = SuperMarioBrosEnv(target=level.target)
        self.level = level
        self.emulator = self._emulators[level.name]
        self.ram = self.emulator.ram
        # (world - 1, stage - 1) as RAM holds them, for telling a warp; None: the full game.
        self._level_bytes = None if level.is_full_game else (level.world - 1, level.stage - 1)

    def _known_level(self, name: str | Level) -> Level:
        level = parse_level(name)
        if level not in self.levels:
            raise ValueError(
                f"level: expected one of this env's levels "
                f"({', '.join(each.name for each in self.levels)}), got {level.name}"
            )
        return level

    # -- RAM ------------------------------------------------------------------------------

    def _observe(self) -> np.ndarray:
        return self.emulator.observation(self._observation_mode)

    def _x_pos(self) -> int:
        return int(self.ram[PLAYER_PAGE]) * 256 + int(self.ram[PLAYER_X])

    def _pages(self) -> tuple[int, int, int, int]:
        """Mario's page, the screen's left page, and the area (type, index) they are in."""
        ram = self.ram
        return (
            int(ram[PLAYER_PAGE]),
            int(ram[SCREEN_LEFT_PAGE]),
            int(ram[AREA_TYPE]),
            int(ram[AREA_INDEX]),
        )

    def _dying(self) -> bool:
        """Mario is dying or dead: his state says so, or he fell below the screen, except
        out of a cloud area, where that fall is the way out (docs/level-mechanics.md, R5)."""
        ram = self.ram
        state = int(ram[PLAYER_STATE])
        if state in (PLAYER_DYING, PLAYER_DEAD):
            return True
        return (
            below_screen(ram)
            and int(ram[CLOUD_AREA]) == 0
            and int(ram[ENTRANCE_MODE]) != LEAVING_CLOUD
        )

    def _death_cause(self) -> DeathCause:
        """How the life now being lost was lost (`info["death"]`)."""
        if below_screen(self.ram):
            return "fell"
        return "time" if int(self.ram[TIMER_EXPIRED]) else "hit"

    def _skip_frames_without_play(self, terminated: bool, dying: bool) -> None:
        """The package's `_did_step` with `dying` read as `_dying` does: cut a death
        animation short (the full game) and skip the black screens between areas and lives,
        so no agent step is spent on frames it cannot act in."""
        if terminated:
            return
        emulator = self.emulator
        ram = self.ram
        # The package's own test (`_is_dying`), less the fall out of a cloud area.
        if dying and (int(ram[PLAYER_STATE]) == PLAYER_DYING or below_screen(ram)):
            emulator._kill_mario()
        if not emulator.is_single_stage_env:
            emulator._skip_end_of_world()
        emulator._skip_change_area()
        emulator._skip_occupied_states()

    def _level_exit(self) -> str | None:
        """`"warp W-S"` or `"loop"` if this frame left the level by one, else None."""
        ram = self.ram
        world, stage = int(ram[WORLD]), int(ram[STAGE])
        if (world, stage) != self._level_bytes:
            return f"warp {world + 1}-{stage + 1}"
        pages = self._pages()
        (page_last, left_last, *area_last), self._pages_last = self._pages_last, pages
        page, left, *area = pages
        # Page bytes wrap: the screen's left page goes 3 -> 0xFF on 4-4's first loop. A pipe
        # can move both pages too, but into another area (or, in 8-4, never back by 4).
        # Mario's page drops by 3, not 4, when he crosses into the next page on the frame
        # the game sends him back (8-4: x 1279 -> 256, page 4 -> 1, screen 4 -> 0).
        screen_back = (left_last - left) & 0xFF == 4
        if screen_back and (page_last - page) & 0xFF in (3, 4) and area == area_last:
            return "loop"
        return None

    def _time(self) -> int:
        digits = self.ram[TIME_DIGITS : TIME_DIGITS + 3]
        return int(digits[0]) * 100 + int(digits[1]) * 10 + int(digits[2])

    def _info(self, flag_get: bool) -> dict[str, Any]:
        ram = self.ram
        status = int(ram[POWER])
        return {
            "x_pos": self._x_last,
            "y_pos": package_y(int(ram[PLAYER_Y_VIEWPORT]), int(ram[PLAYER_Y_PIXEL])),
            "time": self._time_last,
            "flag_get": bool(flag_get),
            "world": int(ram[WORLD]) + 1,
            "stage": int(ram[STAGE]) + 1,
            "life": int(ram[LIVES]),
            "status": _STATUS_NAMES[min(status, 2)],
            "score": _digits(ram[SCORE_DIGITS : SCORE_DIGITS + 6]),
            "coins": _digits(ram[COIN_DIGITS : COIN_DIGITS + 2]),
            "area": int(ram[AREA_TYPE]) * 256 + int(ram[AREA_INDEX]),
            "level": self.level.name,
            "frames": self._frames,
        }


def _digits(values: np.ndarray) -> int:
    number = 0
    for value in values.tolist():
        number = number * 10 + value
    return number
