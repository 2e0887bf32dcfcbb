"""Each wrapper on a scripted env where every number can be worked out by hand."""

import numpy as np
import pytest

from mario_rl.env.core import DEATH_PENALTY, MarioEnv
from mario_rl.env.pipeline import EnvConfig, make_env
from mario_rl.env.ram import AREA_INDEX, AREA_TYPE
from mario_rl.env.wrappers import (
    ActionSpanKeepFrames,
    ClipRewardSign,
    CropRowsObservation,
    EpisodeStatistics,
    FrameStackObservation,
    MaxPoolSkipFrames,
    NoopStart,
    NormalizeObservation,
    ResizeObservation,
    ScaleObservation,
    ShowLastAction,
    StickyAction,
    TerminateOnLifeLoss,
    TruncateOnNoProgress,
    measure_observation_stats,
)
from mario_rl.evaluate import eval_env_config
from mario_rl.presets import get_preset


def test_max_pool_skip_sums_rewards_and_pools_the_last_two_frames(scripted_env):
    env = MaxPoolSkipFrames(scripted_env(), skip=4, pool=2)
    env.reset()
    obs, reward, terminated, _, info = env.step(1)
    assert reward == 1 + 2 + 3 + 4
    assert (obs == 4).all() and obs.dtype == np.uint8
    assert info["frames"] == 4 and not terminated


def test_max_pool_takes_the_brighter_pixel_of_either_frame(scripted_env):
    class Flicker(scripted_env):
        def _frame(self):
            frame = np.zeros(self.shape, np.uint8)
            frame[self.t % 2, 0] = 200  # a sprite drawn on alternate rows each frame
            return frame

    env = MaxPoolSkipFrames(Flicker(), skip=4, pool=2)
    env.reset()
    obs, *_ = env.step(0)
    assert obs[0, 0] == 200 and obs[1, 0] == 200


def test_skip_stops_at_the_end_of_the_episode(scripted_env):
    env = MaxPoolSkipFrames(scripted_env(length=6), skip=4)
    env.reset()
    env.step(0)
    obs, reward, terminated, _, info = env.step(0)
    assert terminated and reward == 5 + 6 and info["frames"] == 6 and (obs == 6).all()


def test_skip_validates_its_arguments(scripted_env):
    with pytest.raises(ValueError, match="pool: expected at most skip=2"):
        MaxPoolSkipFrames(scripted_env(), skip=2, pool=3)
    with pytest.raises(ValueError, match="skip: expected a positive integer, got 0"):
        MaxPoolSkipFrames(scripted_env(), skip=0)


def test_action_span_keeps_frames_4_8_12(scripted_env):
    env = ActionSpanKeepFrames(scripted_env(), span=12, keep=(4, 8, 12))
    obs, _ = env.reset()
    assert obs.shape == (3, 6, 8) and env.observation_space.shape == (3, 6, 8)
    obs, reward, *_ = env.step(2)
    assert [int(frame[0, 0]) for frame in obs] == [4, 8, 12]
    assert reward == sum(range(1, 13))
    obs, *_ = env.step(2)
    assert [int(frame[0, 0]) for frame in obs] == [16, 20, 24]


def test_action_span_pads_with_the_last_frame_when_the_episode_ends(scripted_env):
    env = ActionSpanKeepFrames(scripted_env(length=6), span=12, keep=(4, 8, 12))
    env.reset()
    obs, _, terminated, *_ = env.step(0)
    assert terminated and [int(frame[0, 0]) for frame in obs] == [4, 6, 6]


def test_action_span_rejects_bad_keep(scripted_env):
    with pytest.raises(ValueError, match="keep: expected increasing frame positions"):
        ActionSpanKeepFrames(scripted_env(), span=12, keep=(4, 13))
    with pytest.raises(ValueError, match="keep: expected increasing"):
        ActionSpanKeepFrames(scripted_env(), span=12, keep=(8, 4))


def test_crop_resize_and_stack_shapes_and_values(scripted_env):
    env = CropRowsObservation(scripted_env(shape=(10, 8)), top=3, bottom=1)
    assert env.observation_space.shape == (6, 8)
    env = ResizeObservation(env, (3, 4))
    env = FrameStackObservation(env, 4)
    obs, _ = env.reset()
    assert obs.shape == (4, 3, 4) == env.observation_space.shape
    assert (obs == 0).all()
    obs, *_ = env.step(0)
    obs, *_ = env.step(0)
    assert [int(frame[0, 0]) for frame in obs] == [0, 0, 1, 2]


def test_crop_rejects_cropping_everything(scripted_env):
    with pytest.raises(ValueError, match="leaving at least one of 6 rows"):
        CropRowsObservation(scripted_env(), top=3, bottom=3)


def test_resize_handles_a_stack_of_three_frames_as_frames_not_colour(scripted_env):
    env = ActionSpanKeepFrames(scripted_env(shape=(20, 16)), span=3, keep=(1, 2, 3))
    env = ResizeObservation(env, (5, 4))
    env.reset()
    obs, *_ = env.step(0)
    assert obs.shape == (3, 5, 4)
    assert [int(frame[2, 2]) for frame in obs] == [1, 2, 3]


def test_frame_stack_outputs_are_not_overwritten_by_later_steps(scripted_env):
    env = FrameStackObservation(scripted_env(), 2)
    first, _ = env.reset()
    second, *_ = env.step(0)
    env.step(0)
    assert (first == 0).all() and [int(f[0, 0]) for f in second] == [0, 1]


def test_clip_and_scale(scripted_env):
    env = ScaleObservation(ClipRewardSign(scripted_env()))
    env.reset()
    obs, reward, *_ = env.step(0)
    assert reward == 1.0 and obs.dtype == np.float32
    assert np.allclose(obs, 1 / 255)


def test_normalize_uses_per_pixel_mean_and_scalar_std(scripted_env):
    stats = measure_observation_stats(scripted_env(length=1000), moves=4, seed=0)
    # Frames 1..4 were seen: mean 2.5 everywhere, std of {1, 2, 3, 4} = sqrt(1.25).
    assert np.allclose(stats.mean, 2.5)
    assert stats.std == pytest.approx(np.sqrt(1.25))
    env = NormalizeObservation(scripted_env(length=1000), stats)
    obs, _ = env.reset()
    assert np.allclose(obs, (0 - 2.5) / np.sqrt(1.25))


def test_noop_start_is_seeded_and_counts_frames(scripted_env):
    counts = []
    for _ in range(2):
        env = NoopStart(scripted_env(), max_noops=30)
        counts.append([env.reset(seed=seed)[1]["noops"] for seed in range(10)])
    assert counts[0] == counts[1]
    assert len(set(counts[0])) > 1 and max(counts[0]) <= 30
    env = NoopStart(scripted_env(), max_noops=30)
    _, info = env.reset(seed=3)
    assert info["frames"] == info["noops"] and set(env.unwrapped.actions) <= {0}


def test_sticky_action_repeats_the_previous_action_sometimes(scripted_env):
    env = StickyAction(scripted_env(length=10_000), repeat_probability=0.25)
    env.reset(seed=0)
    for t in range(2000):
        env.step(1 + t % 2)
    actions = np.array(env.unwrapped.actions)
    wanted = 1 + np.arange(2000) % 2
    repeated = np.mean(actions != wanted)
    assert 0.2 < repeated < 0.3
    with pytest.raises(ValueError, match=r"expected a value in \[0, 1\)"):
        StickyAction(scripted_env(), 1.0)


def test_sticky_actions_and_no_op_starts_rest_on_the_action_sets_own_no_op(scripted_env):
    """Index 0 is not a no-op in every set (lnr: left, cs229: left+A+B): a start's no-op
    frames, and the previous action sticky actions repeat first, are the set's own no-op."""
    played = []
    for seed in range(20):
        env = NoopStart(StickyAction(scripted_env(), 0.9, noop_action=7), 5, noop_action=7)
        env.reset(seed=seed)
        env.step(2)
        played.append(env.unwrapped.actions)
    assert {action for actions in played for action in actions} == {2, 7}


def test_the_pipelines_starts_do_not_move_mario_whatever_index_its_no_op_has():
    for actions in ("lnr", "right_only"):
        config = EnvConfig(level="1-1", actions=actions, noop_max=30, sticky_probability=0.25)
        env = make_env(config, seed=0)
        starts = [env.reset(seed=seed)[1]["x_pos"] for seed in range(6)]
        env.close()
        assert starts == [40] * 6, actions  # before: lnr's no-ops walked left, x 18..33


def test_terminate_on_life_loss(scripted_env):
    lives = [2, 2, 2, 1, 1]
    env = TerminateOnLifeLoss(scripted_env(life_script=lives))
    env.reset()
    assert not env.step(0)[2] and not env.step(0)[2]
    assert env.step(0)[2]


def test_truncate_on_no_progress_truncates_not_terminates(scripted_env):
    xs = [0, 5, 10, 10, 9, 10, 10, 11, 11, 11, 11, 11]
    env = TruncateOnNoProgress(scripted_env(x_script=xs), patience=3)
    env.reset()
    flags = [env.step(0)[2:4] for _ in range(10)]
    # best x 10 at step 2; steps 3, 4, 5 make no progress -> truncated at step 5.
    assert flags[4] == (False, True)
    assert all(flag == (False, False) for flag in flags[:4])


def test_a_stall_can_end_as_a_death_with_the_death_penalty(scripted_env):
    xs = [0, 5, 10, 10, 9, 10, 10, 11, 11, 11, 11, 11]
    cut = TruncateOnNoProgress(scripted_env(x_script=xs), patience=3)
    dies = TruncateOnNoProgress(scripted_env(x_script=xs), patience=3, as_death=True)
    cut.reset(), dies.reset()
    for _ in range(4):
        assert cut.step(0)[1:4] == dies.step(0)[1:4]
    _, cut_reward, *cut_flags, cut_info = cut.step(0)
    _, reward, *flags, info = dies.step(0)
    # The same step as the cut (step 5), terminated instead, its reward less 15.
    assert cut_flags == [False, True] and flags == [True, False]
    assert reward == cut_reward + DEATH_PENALTY and DEATH_PENALTY == -15.0
    assert info["no_progress"] and cut_info["no_progress"]


def test_evaluation_never_ends_a_stall_as_a_death():
    config = eval_env_config(get_preset("ppo-levels-stall").env, None, 30, 1000)
    assert not config.no_progress_is_death and config.no_progress_steps == 1000
    assert get_preset("ppo-levels-stall").env.no_progress_is_death


def test_no_progress_is_judged_within_an_area(scripted_env):
    # x and area at reset, then after each step. A pipe at step 2 leads to an area whose x
    # starts at 40, below the 900 reached before it: walking there is progress.
    xs = [40, 500, 900, 40, 60, 80, 80, 80, 80, 900, 900, 900, 900]
    areas = [1, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1]
    env = TruncateOnNoProgress(scripted_env(x_script=xs, area_script=areas), patience=3)
    env.reset()
    truncated = [env.step(0)[3] for _ in range(12)]
    # steps 0, 1 new bests; 2 (a new area), 3, 4 progress; 5, 6, 7 still -> cut at step 7.
    assert truncated[:7] == [False] * 7 and truncated[7]
    # Back in the first area at step 8 (progress: a new area), 900 is not above its best
    # there: steps 9, 10, 11 still -> cut at 11.
    assert truncated[8:11] == [False] * 3 and truncated[11]


def test_the_area_in_info_follows_ram():
    env = MarioEnv("1-1", actions="right_only")
    _, info = env.reset()
    assert info["area"] == 1 * 256 + 5  # 1-1's ground area, as the level table reads it
    env.ram[AREA_TYPE], env.ram[AREA_INDEX] = 2, 2
    assert env.step(0)[4]["area"] == 2 * 256 + 2
    env.close()


def test_episode_statistics(scripted_env):
    env = EpisodeStatistics(MaxPoolSkipFrames(scripted_env(length=10), skip=4))
    env.reset()
    infos = [env.step(0)[4] for _ in range(3)]
    assert "episode" not in infos[0] and "mario_episode" not in infos[0]
    # Gymnasium's and SB3's keys, as RecordEpisodeStatistics and Monitor write them.
    gymnasium_stats = infos[2]["episode"]
    assert set(gymnasium_stats) == {"r", "l", "t"} and gymnasium_stats["t"] >= 0
    assert (gymnasium_stats["r"], gymnasium_stats["l"]) == (float(sum(range(1, 11))), 3)
    assert infos[2]["mario_episode"] == {
        "return": float(sum(range(1, 11))),
        "length": 3,
        "frames": 10,
        "max_x": 10,
        "flag": False,
        "time_left": 390,
        "score": 0,
    }


def test_normalize_rejects_stats_of_another_shape(scripted_env):
    stats = measure_observation_stats(scripted_env(shape=(2, 2)), moves=2, seed=0)
    with pytest.raises(ValueError, match=r"stats.mean: expected shape \(6, 8\), got \(2, 2\)"):
        NormalizeObservation(scripted_env(), stats)


def test_show_last_action_lights_the_strip_of_the_action_just_taken(scripted_env):
    # 3 actions over 9 columns: action i lights columns 3i..3i+2 of the top 2 rows.
    env = ShowLastAction(scripted_env(shape=(6, 9)), rows=2)
    obs, _ = env.reset()
    assert (obs[:2] == 0).all() and (obs[2:] == 0).all()  # nothing held yet; frame 0 is 0s
    obs, *_ = env.step(2)
    assert (obs[:2, 6:] == 255).all() and (obs[:2, :6] == 0).all()
    assert (obs[2:] == 1).all()  # the rest of the frame is the env's own
    obs, *_ = env.step(0)
    assert (obs[:2, :3] == 255).all() and (obs[:2, 3:] == 0).all()
    # The same frame under two different held actions is now two observations.
    assert not np.array_equal(env.step(1)[0][:2], env.step(2)[0][:2])


def test_show_last_action_marks_every_frame_of_a_span_and_checks_its_room(scripted_env):
    env = ShowLastAction(scripted_env(shape=(3, 21, 9)))
    env.reset()
    obs, *_ = env.step(1)
    assert env.rows == 1 and (obs[:, 0, 3:6] == 255).all() and (obs[:, 0, :3] == 0).all()
    with pytest.raises(ValueError, match="3 actions do not fit in a strip 2 pixels wide"):
        ShowLastAction(scripted_env(shape=(6, 2)))
    with pytest.raises(ValueError, match="rows: expected fewer than the frame's 6 rows"):
        ShowLastAction(scripted_env(shape=(6, 9)), rows=6)


def test_a_death_during_no_ops_restarts_from_the_same_start():
    import gymnasium as gym
    from gymnasium import spaces

    class DiesAtOnce(gym.Env):
        """Every step ends the episode; records the options of each reset."""

        observation_space = spaces.Box(0, 255, (1,), np.uint8)
        action_space = spaces.Discrete(2)

        def __init__(self) -> None:
            self.options: list[dict | None] = []

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.options.append(options)
            return np.zeros(1, np.uint8), {}

        def step(self, action):
            return np.zeros(1, np.uint8), 0.0, True, False, {}

    inner = DiesAtOnce()
    env = NoopStart(inner, max_noops=30)
    start = {"level": "4-1"}  # one level of several
    env.reset(seed=1, options=start)
    assert len(inner.options) > 1  # it died during the no-ops and was reset again
    assert all(options == start for options in inner.options)
    # A snapshot is a moment of play: no no-ops after it.
    inner.options.clear()
    _, info = env.reset(seed=1, options={"snapshot": "a state", "level": "4-1"})
    assert info["noops"] == 0 and len(inner.options) == 1


@pytest.mark.parametrize("early_frames", [0, 1, 2, 3])
def test_a_death_inside_a_frame_skip_reaches_the_step_that_lost_the_life(early_frames):
    """In the full game a life lost on a step's first frames is followed by the next life's
    frames; the step still says how it was lost. Right alone meets 1-1's first goomba, on
    each frame of the skip in turn as the start shifts by one frame."""
    right = 1  # in right_only
    env = MarioEnv("full", "right_only")
    for wrapped in (MaxPoolSkipFrames(env, skip=4), ActionSpanKeepFrames(env, span=12)):
        _, info = wrapped.reset()
        lives = info["life"]
        for _ in range(early_frames):
            env.step(0)
        while info["life"] == lives:
            _, _, _, _, info = wrapped.step(right)
        assert info["death"] == "hit", type(wrapped).__name__
    env.close()
