"""`ResetFromOwnSnapshots`: which states join the pool, how starts are drawn, and eval."""

from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from mario_rl.env.pipeline import make_env
from mario_rl.env.snapshots import ResetFromOwnSnapshots
from mario_rl.presets import get_preset


class WalkEnv(gym.Env):
    """Action 1 walks 10 x right, 0 stands still; snapshots (t, x). After `length` steps
    the episode ends at the flag; reaching `pit_x` first ends it in a death."""

    def __init__(self, length: int = 20, pit_x: int | None = None) -> None:
        self.length = length
        self.pit_x = pit_x
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
        info = self._info()
        info["flag_get"] = done and not died
        if done:
            info["mario_episode"] = {"max_x": self.x}
        return np.zeros(1, np.uint8), 0.0, done, False, info

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
    assert list(env.pool) == [(40, (4, 40)), (80, (8, 80)), (120, (12, 120))]
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
            states = {state for _, state in env.pool}
            _, info = env.reset()
            if info["snapshot_start"]:
                assert (env.unwrapped.t, env.unwrapped.x) in states
            seen.append(info["snapshot_x"])
        return seen

    first = starts(3)
    assert first == starts(3)
    assert -1 in first and any(x > 0 for x in first)


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


def test_a_death_keeps_the_snapshot_margin_before_it_and_a_clear_keeps_none():
    env = ResetFromOwnSnapshots(WalkEnv(20, pit_x=150), probability=0.0, every=4, margin=1)
    env.reset(seed=0)
    info = play(env, 1)  # dies at step 15, x 150; snapshots at steps 4, 8, 12
    assert info["flag_get"] is False
    assert list(env.death_pool) == [(80, (8, 80))]
    env.reset()
    play(env, 0)  # stands still to the end of the level's clock: reaches the "flag" at x 0
    assert list(env.death_pool) == [(80, (8, 80))]
    cleared = ResetFromOwnSnapshots(WalkEnv(20), probability=0.0, every=4, margin=1)
    cleared.reset(seed=0)
    assert play(cleared, 1)["flag_get"] is True and not cleared.death_pool


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
        play(env, 1)  # dies again at x 150: the death pool gets the same state again

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
    # 0.3 death starts (x 80, the only death state) and 0.3 best-run starts (x 40, 80, 120).
    share_of_death_x = seen.count(80) / len(seen)
    assert 0.3 < share_of_death_x < 0.55 and seen.count(-1) / len(seen) > 0.25


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
