"""The CS229 report's decision-level env: Mario's symbolic RAM state in, its shaped reward out.

One decision every k frames (`SymbolicDecisions`): the observation is the packed symbolic
state (`mario_rl.env.ram.symbolic_state`, plus optional bits: `state_key`), the reward the
report's shaped reward (`decision_reward`, weights `RewardWeights`), and training episodes
rotate Mario's mode small -> big -> fire (`ScheduledModes`). `mario_rl.agents.cs229` learns
on it. It lives here, apart from the agent, so that the envs' worker processes
(`make_symbolic_envs_in_turn`) import the emulator, NumPy, Gymnasium and OpenCV but not
PyTorch, which the agent's module loads: about 2 s of start-up per worker on 2 cores.
(A forkserver also imports the parent's `__main__` script once: a script that imports the
agent at its top puts PyTorch in the workers again, paid once in the forkserver. The
`mario-rl` command and `python -m pytest` do not.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mario_rl.env.core import MAX_X_STEP_PER_FRAME, MarioEnv
from mario_rl.env.pipeline import EnvConfig, perturbed_starts
from mario_rl.env.ram import (
    BOWSER_KIND,
    DEFEATED_BIT,
    FIRST_PLATFORM_KIND,
    GRID_ROWS,
    POWER,
    POWER_LEVELS,
    RANGE_MID,
    RANGE_NONE,
    RINGS_CODE_BITS,
    STOMPED_STATE,
    SYMBOLIC_CODE_BITS,
    DecisionMemory,
    MarioRamState,
    SymbolicState,
    count_kills,
    enemies,
    mario_tile,
    pack_symbolic,
    pack_symbolic_rings,
    read_mario,
    remember,
    symbolic_state,
    tile_grid,
)
from mario_rl.env.ram import (
    enemy_rings as enemy_ring_bits,
)
from mario_rl.env.vector import MarioVectorEnv, drop_pending_step, ignore_interrupts_in_workers
from mario_rl.env.wrappers import EpisodeStatistics, require_positive

GAP_BIT = SYMBOLIC_CODE_BITS
"""Bit of the key that says `gap_ahead`, above the 32 bits of `pack_symbolic`."""
RINGS_GAP_BIT = RINGS_CODE_BITS
"""The gap bit with `enemy_rings`: above the 40 bits of `pack_symbolic_rings`."""
GAP_LOOKAHEAD = 2
"""Tile columns ahead of Mario that `gap_ahead` looks at (about 2 decisions of running)."""
PLAYER_SIZE = 0x0754
"""SMB RAM map "PlayerSize": 0 big (also fire), 1 small. Must agree with POWER (0x756)."""


# -- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardWeights:
    """The shaped reward's weights, per decision (see `decision_reward`).

    The report names the terms but not their weights; these are ours. One decision at full
    run is about +15 (15 px right); a jump's climb about +16 (64 px at 0.25); a kill
    +25; a hit -50; a death -100: dying must cost more than any few decisions of running
    earn, and a kill about as much as two decisions of running, so stomping pays off
    against running past.
    """

    progress: float = 1.0
    """Per pixel moved right."""
    progress_near_enemy: float = 0.5
    """Per pixel moved right while an enemy is within the mid (7x7) window: less, so
    charging at enemies pays less than dealing with them."""
    back: float = 1.0
    """Penalty per pixel moved left."""
    height: float = 0.25
    """Per pixel of height gained (rises only; falling costs nothing)."""
    kill: float = 25.0
    """Per enemy defeated (stomp, fire, shell...)."""
    collision: float = 50.0
    """Penalty when Mario is hurt (power lost, or he starts dying on contact)."""
    stuck: float = 5.0
    """Penalty per decision while Mario is stuck (x unchanged for `stuck_after` decisions)."""
    death: float = 100.0
    """Penalty when the episode ends with Mario dead (an enemy, a pit, the clock). Ours:
    the report does not name it."""
    flag: float = 100.0
    """Bonus for reaching the flag. Ours, as `death`."""


@dataclass(frozen=True)
class SymbolicSettings:
    """What the env takes of the agent's settings (`CS229Config.symbolic`): plain data, so a
    worker process can unpickle it without importing the agent."""

    reward: RewardWeights = field(default_factory=RewardWeights)
    """The shaped reward's weights."""
    stuck_after: int = 8
    """Decisions with x unchanged before Mario counts as stuck."""
    gap_feature: bool = False
    """Add the `gap_ahead` bit to the state (`CS229Config.gap_feature`)."""
    enemy_rings: bool = False
    """Enemy bits as rings (`CS229Config.enemy_rings`)."""


# -- the maths ----------------------------------------------------------------------------------


def decision_reward(
    before: MarioRamState,
    after: MarioRamState,
    state: SymbolicState,
    kills: int,
    *,
    died: bool,
    won: bool,
    frames: int,
    weights: RewardWeights,
) -> float:
    """The report's shaped reward for one decision, from Mario before and after it.

    progress right (less with an enemy within the mid window) - going back + height gained
    + kills - collision - stuck, then - death or + flag at the end. `state` is the symbolic
    state after the decision; `frames` the frames it lasted (x jumps larger than
    `MAX_X_STEP_PER_FRAME` per frame are warps, not moves). A dying Mario's last moves
    (knocked up, falling into a pit) count for nothing.
    """
    reward = weights.kill * kills
    if state.collided:
        reward -= weights.collision
    if state.stuck:
        reward -= weights.stuck
    if died:
        return reward - weights.death
    dx = after.x - before.x
    if abs(dx) <= MAX_X_STEP_PER_FRAME * frames:
        enemy_close = any(RANGE_NONE < window <= RANGE_MID for window in state.enemy_ranges)
        if dx > 0:
            reward += (weights.progress_near_enemy if enemy_close else weights.progress) * dx
        else:
            reward += weights.back * dx
    reward += weights.height * max(after.y - before.y, 0)
    if won:
        reward += weights.flag
    return float(reward)


def training_mode(episode: int, block: int) -> int:
    """Mario's mode (0 small, 1 big, 2 fire) for 0-based training episode `episode`:
    `block` episodes small, `block` big, `block` fire, and round again."""
    return episode // block % POWER_LEVELS


def set_mode(ram: np.ndarray, mode: int) -> None:
    """Make Mario small (0), big (1) or fire (2) by writing RAM: the power state (0x756)
    and the player size (0x754: 0 big, 1 small) the game keeps consistent with it."""
    if mode not in range(POWER_LEVELS):
        raise ValueError(f"mode: expected 0 (small), 1 (big) or 2 (fire), got {mode}")
    ram[POWER] = mode
    ram[PLAYER_SIZE] = 1 if mode == 0 else 0


def live_enemies(ram: np.ndarray) -> tuple[int, ...]:
    """Per enemy slot, the enemy kind of a live enemy there, or -1 (empty, item, platform,
    or defeated): what `count_new_enemies` compares between decisions."""
    slots = enemies(ram)
    live = (
        slots.drawn
        & ((slots.kind < FIRST_PLATFORM_KIND) | (slots.kind == BOWSER_KIND))
        & ((slots.state & DEFEATED_BIT) == 0)
        & (slots.state != STOMPED_STATE)
    )
    return tuple(np.where(live, slots.kind.astype(np.int64), -1).tolist())


def count_new_enemies(before: tuple[int, ...], after: tuple[int, ...]) -> int:
    """Slots holding a live enemy now that held none, or another kind, before: the
    enemies that appeared (the denominator of the % of enemies killed)."""
    return sum(now >= 0 and now != was for was, now in zip(before, after, strict=True))


def gap_ahead(ram: np.ndarray, columns: int = GAP_LOOKAHEAD) -> bool:
    """A pit ahead: one of the `columns` tile columns right of Mario has no solid tile
    below his lower-body row, down to the bottom of the screen."""
    row, col = mario_tile(ram)
    if not 0 <= row + 1 < GRID_ROWS:
        return False
    below = tile_grid(ram)[row + 1 :, col + 1 : col + 1 + columns]
    return bool(below.shape[1]) and not below.any(axis=0).all()


def state_key(
    ram: np.ndarray, state: SymbolicState, gap_feature: bool, enemy_rings: bool = False
) -> int:
    """The Q-table key: `pack_symbolic(state)` (`pack_symbolic_rings` with `enemy_rings`),
    plus the gap bit with `gap_feature`."""
    if enemy_rings:
        code, gap_bit = pack_symbolic_rings(state, enemy_ring_bits(ram)), RINGS_GAP_BIT
    else:
        code, gap_bit = pack_symbolic(state), GAP_BIT
    if gap_feature and gap_ahead(ram):
        code |= 1 << gap_bit
    return code


# -- the decision-level env -----------------------------------------------------------------------


class SymbolicDecisions(gym.Wrapper):
    """One decision per `frames` frames: the packed symbolic state in, the shaped reward out.

    Wraps a one-frame-per-step `MarioEnv` (optionally under `NoopStart`). Observations are
    `state_key` codes; `reset(options={"mode": 0|1|2})` sets Mario's mode through RAM
    after the env's own reset (None keeps the level's). Infos carry the frame env's keys
    plus `kills`, `enemies` (appeared so far), `mode`, `start_time` and `start_frames`
    (clock and frames when control began). Episodes whose best x stalls for
    `no_progress_decisions` decisions are truncated (0: never).
    """

    def __init__(
        self,
        env: gym.Env,
        frames: int,
        weights: RewardWeights,
        *,
        stuck_after: int,
        no_progress_decisions: int,
        gap_feature: bool = False,
        enemy_rings: bool = False,
    ) -> None:
        super().__init__(env)
        if not isinstance(env.unwrapped, MarioEnv):
            raise ValueError(f"env: expected a MarioEnv underneath, got {env.unwrapped!r}")
        self.frames = frames
        self.weights = weights
        self.stuck_after = stuck_after
        self.no_progress_decisions = no_progress_decisions
        self.gap_feature, self.enemy_rings = gap_feature, enemy_rings
        code_bits = RINGS_GAP_BIT if enemy_rings else GAP_BIT
        self.observation_space = spaces.Discrete(1 << (code_bits + gap_feature))
        self._ram: np.ndarray = env.unwrapped.ram
        self._memory: DecisionMemory | None = None
        self._mario: MarioRamState | None = None
        self._enemies: tuple[int, ...] = ()
        self._counts: dict[str, int] = {}
        self._start: dict[str, int] = {}
        self._best_x = 0
        self._stalled = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        _, info = self.env.reset(seed=seed, options=options)
        mode = (options or {}).get("mode")
        if mode is not None:
            set_mode(self._ram, mode)
        ram = self._ram
        state = symbolic_state(ram, None, stuck_after=self.stuck_after)
        self._memory = remember(ram, None)
        self._mario = read_mario(ram)
        self._enemies = live_enemies(ram)
        self._counts = {"kills": 0, "enemies": count_new_enemies((-1,) * 5, self._enemies)}
        self._best_x, self._stalled = self._mario.x, 0
        self._start = {"start_time": info["time"], "start_frames": info["frames"]}
        info.update(self._counts, mode=self._mario.power, **self._start)
        return np.int64(state_key(ram, state, self.gap_feature, self.enemy_rings)), info

    def step(self, action: int | np.integer) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        if self._memory is None or self._mario is None:
            raise RuntimeError("step() called before reset()")
        frames = 0
        terminated = truncated = False
        info: dict[str, Any] = {}
        while frames < self.frames and not (terminated or truncated):
            _, _, terminated, truncated, info = self.env.step(action)
            frames += 1
        ram = self._ram
        mario = read_mario(ram)
        state = symbolic_state(ram, self._memory, stuck_after=self.stuck_after)
        kills = count_kills(self._memory.enemy_states, ram)
        total_kills = kills.stomp + kills.fire + kills.other
        now_live = live_enemies(ram)
        self._counts["kills"] += total_kills
        self._counts["enemies"] += count_new_enemies(self._enemies, now_live)
        won = bool(info["flag_get"])
        reward = decision_reward(
            self._mario,
            mario,
            state,
            total_kills,
            died=terminated and not won,
            won=won,
            frames=frames,
            weights=self.weights,
        )
        self._memory = remember(ram, self._memory)
        self._mario, self._enemies = mario, now_live
        if mario.x > self._best_x:
            self._best_x, self._stalled = mario.x, 0
        else:
            self._stalled += 1
        if 0 < self.no_progress_decisions <= self._stalled and not terminated:
            truncated = True
            info["no_progress"] = True
        info.update(self._counts, mode=mario.power, **self._start)
        key = state_key(ram, state, self.gap_feature, self.enemy_rings)
        return np.int64(key), reward, terminated, truncated, info


def make_symbolic_env(
    env_config: EnvConfig,
    seed: int | None = None,
    render_mode: str | None = None,
    *,
    settings: SymbolicSettings | None = None,
) -> gym.Env:
    """The CS229 agent's env: MarioEnv -> [StickyAction] -> NoopStart -> SymbolicDecisions ->
    EpisodeStatistics.

    Takes `make_env`'s arguments (so a `Policy` can use it): `frame_skip` is the frames per
    decision, `noop_max` the no-op start and `no_progress_steps` the decisions without a new
    best x before truncation; `settings` gives the reward weights, `stuck_after` and the
    state's optional bits (defaults: `SymbolicSettings()`, as `CS229Config()` has them).
    """
    settings = settings or SymbolicSettings()
    env: gym.Env = MarioEnv(
        env_config.level, env_config.actions, obs_type="gray", render_mode=render_mode
    )
    env = perturbed_starts(env, env_config)
    env = SymbolicDecisions(
        env,
        env_config.frame_skip,
        settings.reward,
        stuck_after=settings.stuck_after,
        no_progress_decisions=env_config.no_progress_steps,
        gap_feature=settings.gap_feature,
        enemy_rings=settings.enemy_rings,
    )
    env = EpisodeStatistics(env)
    env.action_space.seed(seed)
    if seed is not None:
        env.reset(seed=seed)
    return env


class ScheduledModes(gym.Wrapper):
    """Starts each episode in the mode of `training_mode`, counting this env's episodes as
    `first, first + stride, ...` (env i of n: i, i + n, ...), so that a vector env's
    autoresets, which pass no options, still follow the report's mode rotation. `block`
    None: always small Mario (evaluation)."""

    def __init__(self, env: gym.Env, block: int | None, first: int = 0, stride: int = 1) -> None:
        super().__init__(env)
        self.block, self.episode, self.stride = block, first, stride

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        mode = 0 if self.block is None else training_mode(self.episode, self.block)
        self.episode += self.stride
        options = {**(kwargs.pop("options", None) or {}), "mode": mode}
        return self.env.reset(options=options, **kwargs)


def _symbolic_worker_env(
    env_config: EnvConfig, settings: SymbolicSettings, block: int | None, first: int, stride: int
) -> gym.Env:
    ignore_interrupts_in_workers()
    return ScheduledModes(make_symbolic_env(env_config, settings=settings), block, first, stride)


def make_symbolic_envs_in_turn(
    env_config: EnvConfig,
    settings: SymbolicSettings,
    num_envs: int,
    *,
    mode_block: int | None,
    first_episode: int = 0,
) -> list[gym.vector.VectorEnv]:
    """`num_envs` symbolic envs, each in its own worker process behind a one-env vector env
    (SAME_STEP autoreset), to be stepped in turn (`StepsInTurn`): this process takes one
    env's decision while the others emulate theirs, so no env waits for the slowest one.
    With `mode_block`, Mario's mode rotates by each env's own episode count (training:
    `ScheduledModes`; env i plays episodes first_episode + i, + n, ...); None: he always
    starts small (evaluation)."""
    require_positive("num_envs", num_envs)
    if mode_block is not None and mode_block < 1:
        raise ValueError(f"mode_block: expected a positive integer or None, got {mode_block!r}")
    made: list[gym.vector.VectorEnv] = []
    try:
        for i in range(num_envs):
            make = functools.partial(
                _symbolic_worker_env, env_config, settings, mode_block, first_episode + i, num_envs
            )
            made.append(
                MarioVectorEnv(
                    [make], context="forkserver", autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
                )
            )
    except BaseException:
        close_in_turn(made)
        raise
    return made


def reset_in_turn(envs: list[gym.vector.VectorEnv], seed: int | None = None) -> list[int]:
    """Resets every env at once (env i with `seed + i`, as a vector env seeds its envs);
    their first states."""
    for i, env in enumerate(envs):
        env.reset_async(seed=None if seed is None else seed + i)
    return [int(env.reset_wait()[0][0]) for env in envs]


def close_in_turn(envs: list[gym.vector.VectorEnv]) -> None:
    """Closes envs that may have a step in flight (a stop mid-turn)."""
    for env in envs:
        drop_pending_step(env)
        env.close()
