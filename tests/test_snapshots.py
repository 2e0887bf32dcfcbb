"""`ResetFromOwnSnapshots`: which states join the pool, how starts are drawn, and eval."""

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils import seeding

from mario_rl.env.core import LevelSnapshot
from mario_rl.env.pipeline import make_env
from mario_rl.env.snapshots import ResetFromOwnSnapshots, Start
from mario_rl.env.wrappers import TruncateOnNoProgress
from mario_rl.presets import get_preset


class WalkEnv(gym.Env):
    """Action 1 walks 10 x right, 0 stands still; snapshots (t, x). After `length` steps
    the episode ends at the flag; reaching `pit_x` first ends it in a death; with
    `truncate_at`, it is truncated after that many steps. With `pit_exit`, the pit is a
    level exit instead, as MarioEnv reports one in `info["exit"]` ("warp 4-1", "loop")."""

    def __init__(
        self,
        length: int = 20,
        pit_x: int | None = None,
        truncate_at: int | None = None,
        pit_exit: str | None = None,
    ) -> None:
        self.length = length
        self.pit_x = pit_x
        self.truncate_at = truncate_at
        self.pit_exit = pit_exit
        self.observation_space = spaces.Box(0, 255, (1,), np.uint8)
        self.action_space = spaces.Discrete(2)
        self.t = self.x = 0

    def _info(self) -> dict[str, Any]:
        return {"x_pos": self.x, "frames": self.t}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t, self.x = (options or {}).get("snapshot", (0, 0))
        return np.zeros(1, np.uint8), self._info()

    def step(self, action: int):
        self.t += 1
        self.x += 10 * int(action)
        died = self.pit_x is not None and self.x >= self.pit_x
        done = died or self.t >= self.length
        truncated = not done and self.truncate_at is not None and self.t >= self.truncate_at
        info = self._info()
        info["flag_get"] = done and not died
        if died and self.pit_exit is not None:
            info["exit"] = self.pit_exit
        if done or truncated:
            info["mario_episode"] = {"max_x": self.x}
        return np.zeros(1, np.uint8), 0.0, done, truncated, info

    def snapshot(self) -> tuple[int, int]:
        return (self.t, self.x)


def play(env: gym.Env, action: int) -> dict[str, Any]:
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    return info


def test_a_best_run_fills_the_pool_less_its_last_snapshots():
    env = ResetFromOwnSnapshots(WalkEnv(20), probability=0.0, every=4, margin=1)
    env.reset(seed=0)
    info = play(env, 1)  # x 10 .. 200; snapshots at steps 4, 8, 12, 16 (not the last step)
    assert info["mario_episode"]["snapshot_start"] is False
    assert list(env.pool) == [Start(x, (x // 10, x), 1) for x in (40, 80, 120)]
    assert env.best_x == 200


def test_runs_short_of_the_best_and_standing_still_add_nothing():
    env = ResetFromOwnSnapshots(WalkEnv(20), probability=0.0, every=4, margin=0)
    env.reset(seed=0)
    play(env, 1)
    pool = list(env.pool)
    env.reset()
    play(env, 0)  # never moves: no snapshot taken, and x 0 is short of the best
    assert list(env.pool) == pool


def test_starts_come_only_from_the_pool_and_are_reproducible():
    def starts(seed: int) -> list[int]:
        env = ResetFromOwnSnapshots(WalkEnv(12), probability=0.5, every=2, margin=0)
        _, info = env.reset(seed=seed)
        seen = [info["snapshot_x"]]
        for _ in range(30):
            play(env, 1)
            states = {start.state for start in env.pool}
            _, info = env.reset()
            if info["snapshot_start"]:
                assert (env.unwrapped.t, env.unwrapped.x) in states
            seen.append(info["snapshot_x"])
        return seen

    first = starts(3)
    assert first == starts(3)
    assert -1 in first and any(x > 0 for x in first)


class TwoLevelWalk(WalkEnv):
    """WalkEnv on two levels, as a MarioEnv of several levels: "1-1" is 20 steps long,
    "1-2" 8; `reset(options={"level": ...})` picks one, snapshots carry theirs."""

    levels = (SimpleNamespace(name="1-1"), SimpleNamespace(name="1-2"))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        options = dict(options or {})
        snapshot = options.pop("snapshot", None)
        self.level = snapshot.level if snapshot else options.get("level", "1-1")
        self.length = 20 if self.level == "1-1" else 8
        if snapshot:
            options["snapshot"] = snapshot.state
        return super().reset(seed=seed, options=options)

    def snapshot(self) -> LevelSnapshot:
        return LevelSnapshot(self.level, super().snapshot())


def test_with_several_levels_each_level_starts_from_its_own_runs():
    env = ResetFromOwnSnapshots(TwoLevelWalk(), probability=0.5, every=2, margin=0)
    env.reset(seed=1)
    played = set()
    for _ in range(40):
        level = env.unwrapped.level
        played.add(level)
        play(env, 1)
        # The pool of the level just played holds only its own states.
        assert env.pool and all(start.x <= (200 if level == "1-1" else 80) for start in env.pool)
        assert env.best_x == (200 if level == "1-1" else 80)
        _, info = env.reset()
        if info["snapshot_start"]:
            assert info["snapshot_x"] <= (200 if env.unwrapped.level == "1-1" else 80)
    assert played == {"1-1", "1-2"}
    for level, pools in env._pools.items():
        assert {start.state.level for start in pools.pool} == {level}


def test_with_several_levels_the_seed_fixes_the_first_level_too():
    def levels(seed: int) -> list[str]:
        env = ResetFromOwnSnapshots(TwoLevelWalk(), probability=0.5, every=2, margin=0)
        played = [env.reset(seed=seed) and env.unwrapped.level]
        for _ in range(8):
            play(env, 1)
            env.reset()
            played.append(env.unwrapped.level)
        return played

    assert all(levels(seed) == levels(seed) for seed in range(6))
    assert len({levels(seed)[0] for seed in range(6)}) == 2  # and it is drawn


@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_probability_zero_never_and_one_always_once_the_pool_has_states(probability):
    env = ResetFromOwnSnapshots(WalkEnv(12), probability=probability, every=2)
    env.reset(seed=0)
    flags = []
    for _ in range(5):
        play(env, 1)
        flags.append(env.reset()[1]["snapshot_start"])
    assert flags == [bool(probability)] * 5


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match=r"probability: expected a value in \[0, 1\], got 2"):
        ResetFromOwnSnapshots(WalkEnv(), probability=2)
    with pytest.raises(ValueError, match="every: expected a positive integer, got 0"):
        ResetFromOwnSnapshots(WalkEnv(), probability=0.5, every=0)
    with pytest.raises(ValueError, match=r"death_probability: expected a value in \[0, 1\]"):
        ResetFromOwnSnapshots(WalkEnv(), probability=0.5, death_probability=-0.1)
    with pytest.raises(ValueError, match=r"expected at most 1, got 0.5 \+ 0.75"):
        ResetFromOwnSnapshots(WalkEnv(), probability=0.5, death_probability=0.75)


def death_starts(env: gym.Env, probability: float = 0.0, death: float = 0.5, **kw: Any):
    return ResetFromOwnSnapshots(env, probability=probability, death_probability=death, **kw)


def test_a_death_keeps_the_snapshot_margin_before_it():
    env = death_starts(WalkEnv(20, pit_x=150), every=4, margin=1)
    env.reset(seed=0)
    info = play(env, 1)  # dies at step 15, x 150; snapshots at steps 4, 8, 12
    assert info["flag_get"] is False
    assert list(env.death_pool) == [Start(80, (8, 80), 1)]


def test_a_castle_loop_counts_as_a_death():
    env = death_starts(WalkEnv(20, pit_x=150, pit_exit="loop"), every=4, margin=1)
    env.reset(seed=0)
    assert play(env, 1)["exit"] == "loop"
    assert list(env.death_pool) == [Start(80, (8, 80), 1)]


def test_a_death_start_spread_draws_from_that_many_snapshots_further_back():
    """Snapshots at steps 4, 8, ..., 28 (x 40..280), death at step 30: margin 1 keeps the
    snapshot at step 24; a spread of 2 draws among steps 24, 20 and 16, each about a third
    of the time; a spread beyond the trail stops at its first snapshot."""
    # Death starts kept but (almost) never drawn: every episode walks from the start.
    env = death_starts(WalkEnv(40, pit_x=300), death=1e-9, every=4, margin=1, death_spread=2)
    env.reset(seed=0)
    for _ in range(300):
        play(env, 1)
        env.reset()
    counts = {x: sum(start.x == x for start in env.death_pool) for x in (160, 200, 240)}
    assert sum(counts.values()) == len(env.death_pool) == env.pool_size
    assert all(count >= 4 for count in counts.values()), counts
    deep = death_starts(WalkEnv(40, pit_x=100), death=1e-9, every=4, margin=1, death_spread=9)
    deep.reset(seed=0)  # snapshots at steps 4 and 8 (x 40, 80), death at step 10
    for _ in range(50):
        play(deep, 1)
        deep.reset()
    assert {start.x for start in deep.death_pool} == {40}


def test_without_a_spread_a_death_draws_nothing_from_the_rng():
    """Runs without the spread keep the RNG stream (sticky actions, no-op starts, the
    starts' draws) they had before it existed; with it, each death draws its depth."""

    def next_draw(spread: int) -> float:
        env = death_starts(WalkEnv(40, pit_x=300), every=4, margin=1, death_spread=spread)
        env.reset(seed=4)
        play(env, 1)  # a death with a long trail: the spread has depths to draw from
        assert env.death_pool
        return env.np_random.random()

    untouched = seeding.np_random(4)[0].random()
    assert next_draw(0) == untouched
    assert next_draw(2) != untouched


def test_a_negative_death_start_spread_is_refused():
    with pytest.raises(ValueError, match="death_spread: expected >= 0"):
        death_starts(WalkEnv(), death_spread=-1)


@pytest.mark.parametrize(
    ("env", "why"),
    [
        (WalkEnv(20), "a clear"),
        (WalkEnv(40, truncate_at=15), "a truncation (a stall cut short)"),
        (WalkEnv(20, pit_x=50), "a death with a trail no longer than the margin"),
        (WalkEnv(20, pit_x=150, pit_exit="warp 4-1"), "a warp: a way out, not a death"),
    ],
)
def test_only_deaths_with_a_trail_join_the_death_pool(env, why):
    wrapped = death_starts(env, every=4, margin=1)
    wrapped.reset(seed=0)
    play(wrapped, 1)
    assert not wrapped.death_pool, why


@pytest.mark.parametrize("as_death", [True, False])
def test_a_stall_ended_as_a_death_joins_the_death_pool(as_death):
    stalls = TruncateOnNoProgress(WalkEnv(40), patience=3, as_death=as_death)
    env = death_starts(stalls, every=4, margin=1)
    env.reset(seed=0)
    for _ in range(12):  # x 10 .. 120; snapshots at steps 4, 8, 12
        env.step(1)
    info = play(env, 0)  # stands still: cut at step 15
    assert info["no_progress"]
    assert list(env.death_pool) == ([Start(80, (8, 80), 1)] if as_death else [])


def test_with_death_starts_off_no_death_state_is_kept_and_the_rng_is_untouched():
    def run(death: float) -> tuple[list[int], Any]:
        env = ResetFromOwnSnapshots(
            WalkEnv(20, pit_x=150), probability=0.0, every=4, margin=1, death_probability=death
        )
        env.reset(seed=4)
        play(env, 1)
        env.reset()
        return list(env.death_pool), env.np_random.random()

    off_pool, off_next = run(0.0)
    assert off_pool == []
    # As before death starts existed: one draw per reset once the best-run pool has states
    # (here probability 0, so no second draw to pick one), none from the death starts.
    plain = WalkEnv(20, pit_x=150)
    plain.reset(seed=4)
    play(plain, 1)
    plain.reset()
    plain.np_random.random()
    assert off_next == plain.np_random.random()
    assert run(0.5)[0] == [Start(80, (8, 80), 1)]


def test_death_starts_come_from_the_death_pool_in_their_share_of_resets():
    env = ResetFromOwnSnapshots(
        WalkEnv(20, pit_x=150), probability=0.0, every=4, margin=1, death_probability=1.0
    )
    _, info = env.reset(seed=0)
    assert info["snapshot_start"] is False  # nothing has died yet
    play(env, 1)
    for _ in range(3):
        _, info = env.reset()
        assert info["snapshot_start"] and info["snapshot_x"] == 80
        assert (env.unwrapped.t, env.unwrapped.x) == (8, 80)
        play(env, 1)  # dies again at x 150; from x 80 the trail is too short to add a state

    def kinds(seed: int) -> list[int]:
        env = ResetFromOwnSnapshots(
            WalkEnv(20, pit_x=150), probability=0.3, every=4, margin=1, death_probability=0.3
        )
        env.reset(seed=seed)
        seen = []
        for _ in range(200):
            play(env, 1)
            seen.append(env.reset()[1]["snapshot_x"])
        return seen

    seen = kinds(5)
    assert seen == kinds(5)
    # 0.3 death starts (x 80, the only death state) and 0.3 best-run starts (x 40 or 80,
    # the best run's trail less its margin): expected shares 0.45 at x 80, 0.15 at x 40.
    shares = {x: seen.count(x) / len(seen) for x in (-1, 40, 80)}
    assert 0.35 < shares[80] < 0.55 and 0.08 < shares[40] < 0.25 and shares[-1] > 0.3


def test_on_mario_a_snapshot_start_resumes_further_right():
    env_config = get_preset("ppo-fast").env
    env = ResetFromOwnSnapshots(
        make_env(replace(env_config, noop_max=0), seed=0), probability=1.0, every=2, margin=0
    )
    _, info = env.reset(seed=0)
    start_x = info["x_pos"]
    play(env, 4)  # right + A + B until the first goomba or the no-progress cut
    _, info = env.reset()
    assert info["snapshot_start"] and info["x_pos"] == info["snapshot_x"] > start_x


def test_on_mario_a_death_start_resumes_shortly_before_the_death():
    env_config = replace(get_preset("ppo-fast").env, noop_max=0, sticky_probability=0.0)
    env = ResetFromOwnSnapshots(
        make_env(env_config, seed=0), probability=0.0, every=2, margin=1, death_probability=1.0
    )
    env.reset(seed=0)
    info = play(env, 1)  # walks right into the first goomba
    assert not info["flag_get"] and info["mario_episode"]["max_x"] < 500
    (death_start,) = env.death_pool
    _, info = env.reset()
    death_x = info["snapshot_x"]
    assert info["snapshot_start"] and info["x_pos"] == death_x == death_start[0]
    info = play(env, 1)  # the same walk from there meets the same goomba
    assert not info["flag_get"] and death_x < info["x_pos"] <= death_x + 60


def test_on_mario_a_snapshot_start_holds_the_action_taken_into_it_without_no_ops():
    """The campaign's pipeline (no-op starts, sticky actions, the last action shown).
    Before, a snapshot start began with 0..30 frames of released buttons (the no-op starts
    meant for the level's start: a running Mario slowed, a jump cut short), and showed and
    held "nothing" where play holds the action taken into it."""
    from mario_rl.env.wrappers import ShowLastAction, StickyAction

    env_config = get_preset("ppo-levels").env
    assert env_config.noop_max > 0 and env_config.sticky_probability > 0
    env = ResetFromOwnSnapshots(make_env(env_config, seed=0), probability=1.0, every=2, margin=0)
    env.reset(seed=0)
    play(env, 4)  # right + A + B
    obs, info = env.reset()
    assert info["snapshot_start"] and info["noops"] == 0
    assert info["x_pos"] == info["snapshot_x"]
    wrappers = {}
    layer = env.env
    while isinstance(layer, gym.Wrapper):
        wrappers[type(layer)] = layer
        layer = layer.env
    assert wrappers[StickyAction]._last_action == 4
    strip = wrappers[ShowLastAction]
    assert (obs[-1, : strip.rows] == strip._strips[4]).all()
    # A start at the level's own beginning still shows and holds nothing.
    obs, info = ResetFromOwnSnapshots(make_env(env_config, seed=0), probability=1.0).reset(seed=0)
    assert not info["snapshot_start"]
    assert (obs[-1, : strip.rows] == strip._strips[strip.actions]).all()


def test_on_mario_a_snapshot_start_stacks_the_frames_seen_at_that_moment():
    """Before, the stack began as four copies of the restored frame: a Mario restored
    mid-jump looked motionless for three steps."""
    env_config = get_preset("ppo-levels").env
    env = ResetFromOwnSnapshots(make_env(env_config, seed=0), probability=1.0, every=2, margin=0)
    env.reset(seed=0)
    seen, done = [], False
    while not done:
        obs, _, terminated, truncated, info = env.step(4)  # right + A + B
        seen.append((info["x_pos"], obs))
        done = terminated or truncated
    obs, info = env.reset()
    assert info["snapshot_start"]
    assert any(x == info["x_pos"] and (played == obs).all() for x, played in seen)
    assert not all((frame == obs[-1]).all() for frame in obs[:-1]), "Mario was running"


def test_the_agent_configs_spread_reaches_the_workers_wrapper():
    from mario_rl.env.snapshots import snapshot_wrapper_for

    wrapper = snapshot_wrapper_for(get_preset("ppo-levels-deep").agent)
    assert wrapper.keywords["death_spread"] == 4
    assert snapshot_wrapper_for(get_preset("ppo-levels").agent).keywords["death_spread"] == 0
