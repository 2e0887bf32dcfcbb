"""The real emulator through MarioEnv and make_env."""

from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mario_rl.env.core import MarioEnv
from mario_rl.env.levels import UnknownLevelError
from mario_rl.env.pipeline import EnvConfig, make_env
from mario_rl.env.ram import PLAYER_STATE, PLAYER_X, TIME_DIGITS

RIGHT_RUN = 3  # "right + B" in right_only


@pytest.fixture(scope="module")
def mario() -> MarioEnv:
    env = MarioEnv("1-1", "right_only", obs_type="gray")
    yield env
    env.close()


@pytest.mark.parametrize("obs_type", ["rgb", "gray"])
def test_mario_env_passes_gymnasiums_checker(obs_type):
    env = MarioEnv("1-1", "simple", obs_type=obs_type)
    check_env(env, skip_render_check=True)
    env.close()


CONFIGS = {
    "nature": EnvConfig(),
    "curiosity": EnvConfig(
        actions="curiosity",
        frame_skip=12,
        keep_frames=(4, 8, 12),
        resize=(110, 84),
        crop_top=18,
        crop_bottom=8,
        frame_stack=1,
    ),
    "robust": EnvConfig(
        noop_max=10,
        sticky_probability=0.25,
        end_on_life_loss=True,
        no_progress_steps=20,
        clip_rewards=True,
        scale=True,
        resize=(42, 42),
        show_last_action=True,
    ),
}


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped")
@pytest.mark.parametrize("name", list(CONFIGS))
def test_pipelines_pass_gymnasiums_checker(name):
    env = make_env(CONFIGS[name], seed=0)
    check_env(env, skip_render_check=True)
    env.close()


def test_pipeline_shapes():
    shapes = {name: make_env(config).observation_space.shape for name, config in CONFIGS.items()}
    assert shapes == {"nature": (4, 84, 84), "curiosity": (3, 84, 84), "robust": (4, 42, 42)}


def test_each_stacked_frame_shows_the_action_that_led_to_it():
    config = EnvConfig(actions="right_only", resize=(42, 42), show_last_action=True)
    env = make_env(config, seed=0)
    env.step(2)
    obs, *_ = env.step(4)  # right+A+B of 5 actions: columns 33..41 of rows 0..1
    assert (obs[-1, :2, 33:] == 255).all() and (obs[-1, :2, :33] == 0).all()
    assert (obs[-2, :2, 16:25] == 255).all()  # the step before: right+A, columns 16..24
    assert not (obs[-1, 2:] == 0).all()  # the game's own picture below the strip
    env.close()


def test_observations_are_copies_not_views_of_the_screen(mario):
    first, _ = mario.reset(seed=0)
    kept = first.copy()
    for _ in range(30):
        obs, *_ = mario.step(RIGHT_RUN)
    assert not np.shares_memory(obs, mario.emulator.screen)
    assert np.array_equal(first, kept), "a later step changed an observation handed out earlier"
    assert not np.array_equal(first, obs)


def test_running_right_earns_progress_reward_and_x(mario):
    _, info = mario.reset(seed=0)
    start_x = info["x_pos"]
    rewards = [mario.step(RIGHT_RUN)[1] for _ in range(60)]
    _, _, _, _, info = mario.step(RIGHT_RUN)
    assert info["x_pos"] > start_x + 80
    assert sum(rewards) > 40
    assert info["frames"] == 61 and info["world"] == 1 and info["stage"] == 1


def test_death_ends_the_episode_with_the_penalty():
    env = MarioEnv("1-1", "lnr")
    env.reset(seed=0)
    # Walking right without jumping runs into the first goomba.
    for _ in range(2000):
        _, reward, terminated, truncated, info = env.step(2)
        if terminated:
            break
    assert terminated and not truncated and not info["flag_get"]
    assert reward < -10
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    env.close()


def test_a_death_says_how_the_life_was_lost():
    """`info["death"]` on the real emulator: walking into the first goomba is a hit (also
    with the clock at 000 just before), running into the first pit (the person of
    tests/data/1-1-finish.jsonl up to x 1000, then right alone) a fall, and standing there
    with the clock set to 001, the clock's."""
    from mario_rl.play import BUTTON_BITS, CONTROLLER_ACTIONS, ScriptedInputs

    env = MarioEnv("1-1", CONTROLLER_ACTIONS)

    def until_it_ends(buttons: int) -> dict:
        for _ in range(2000):
            _, reward, terminated, _, info = env.step(buttons)
            if terminated:
                assert reward < -10 and not info["flag_get"]
                return info
        raise AssertionError("the episode did not end")

    env.reset()
    assert until_it_ends(BUTTON_BITS["right"])["death"] == "hit"
    # The clock shows 000 for a while before it has run out: a hit then is still a hit.
    goomba_frame = env.frames
    env.reset()
    for _ in range(goomba_frame - 1):
        env.step(BUTTON_BITS["right"])
    env.ram[TIME_DIGITS : TIME_DIGITS + 3] = [0, 0, 0]
    hit = until_it_ends(BUTTON_BITS["right"])
    assert (hit["death"], hit["time"], env.frames) == ("hit", 0, goomba_frame)
    _, info = env.reset()
    inputs = ScriptedInputs.from_file(Path(__file__).parent / "data" / "1-1-finish.jsonl")
    while info["x_pos"] < 1000:
        _, _, _, _, info = env.step(sum(BUTTON_BITS[b] for b in inputs.buttons(env.frames)))
    assert "death" not in info
    before_the_pit = env.snapshot()
    fell = until_it_ends(BUTTON_BITS["right"])
    assert (fell["death"], fell["x_pos"]) == ("fell", 1137)
    env.reset(options={"snapshot": before_the_pit})
    env.ram[TIME_DIGITS : TIME_DIGITS + 3] = [0, 0, 1]
    assert until_it_ends(0)["death"] == "time"
    env.close()


def test_reward_is_clipped_to_15_and_warps_earn_no_progress(mario):
    """x progress + clock tick - 15 on death, clipped to [-15, 15]; an x jump of more than
    5 px in one frame (a warp, a pipe exit) counts 0. Each case pokes RAM from one state
    running right at 3 px a frame, clock at 397."""
    mario.reset(seed=0)
    for _ in range(60):
        mario.step(RIGHT_RUN)
    running = mario.snapshot()

    def step_after(poke) -> tuple[float, int]:
        _, info = mario.reset(options={"snapshot": running})
        poke(mario.ram)
        _, reward, _, _, after = mario.step(RIGHT_RUN)
        return reward, after["x_pos"] - info["x_pos"]

    reward, dx = step_after(lambda ram: None)
    assert (reward, dx) == (3.0, 3)  # the unclipped reward: 3 px, no tick this frame
    # Dying: 3 - 15 = -12, inside the range, so not clipped.
    assert step_after(lambda ram: ram.__setitem__(PLAYER_STATE, 0x0B)) == (-12.0, 3)

    def drain_clock(ram):  # the clock drops by hundreds in one frame
        ram[TIME_DIGITS : TIME_DIGITS + 3] = [0, 0, 5]

    # 3 + (5 - 397) = -389 -> -15.
    assert step_after(drain_clock)[0] == -15.0

    def die_as_clock_drops(ram):
        ram[PLAYER_STATE] = 0x0B
        ram[TIME_DIGITS : TIME_DIGITS + 3] = [3, 8, 0]

    # 3 + (380 - 397) - 15 = -29 -> -15.
    assert step_after(die_as_clock_drops)[0] == -15.0
    # x jumps 177 -> 253 in one frame: progress 0, not 76 clipped to 15.
    reward, dx = step_after(lambda ram: ram.__setitem__(PLAYER_X, 250))
    assert dx > 5 and reward == 0.0


def test_same_seed_same_trajectory():
    config = EnvConfig(noop_max=20, sticky_probability=0.25)
    runs = []
    for _ in range(2):
        env = make_env(config, seed=7)
        obs, _ = env.reset(seed=7)
        trace = [obs]
        for action in np.random.default_rng(0).integers(0, 7, 60):
            obs, _, terminated, truncated, _ = env.step(action)
            trace.append(obs)
            if terminated or truncated:
                trace.append(env.reset()[0])
        runs.append(np.stack(trace))
        env.close()
    assert np.array_equal(runs[0], runs[1])


def test_snapshot_reset_resumes_from_the_saved_state(mario):
    mario.reset(seed=0)
    for _ in range(60):
        mario.step(RIGHT_RUN)
    snapshot = mario.snapshot()
    obs_then, _, _, _, info_then = mario.step(0)
    _, info = mario.reset(options={"snapshot": snapshot})
    assert info["x_pos"] == pytest.approx(info_then["x_pos"], abs=3)
    obs_again, *_ = mario.step(0)
    assert np.array_equal(obs_then, obs_again)


def test_unknown_level_in_config():
    with pytest.raises(UnknownLevelError):
        EnvConfig(level="0-0")


def test_gymnasium_ids_build_the_projects_pipeline():
    import gymnasium as gym

    import mario_rl  # noqa: F401  (registers the ids)

    assert {"mario_rl/SuperMarioBros-8-4-v0", "mario_rl/SuperMarioBros-v0"} <= set(gym.registry)
    assert gym.spec("mario_rl/SuperMarioBros-1-2-v0").kwargs == {"level": "1-2"}
    env = gym.make("mario_rl/SuperMarioBros-1-1-v0", actions="right_only", resize=(42, 42))
    same = make_env(EnvConfig(actions="right_only", resize=(42, 42)))
    try:
        assert np.array_equal(env.reset(seed=0)[0], same.reset(seed=0)[0])
        assert env.action_space.n == 5
        for _ in range(5):
            obs, *_ = env.step(3)
            same_obs, *_ = same.step(3)
        assert np.array_equal(obs, same_obs)
    finally:
        env.close()
        same.close()
    envs = gym.make_vec("mario_rl/SuperMarioBros-1-2-v0", num_envs=2, vectorization_mode="sync")
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 4, 84, 84)  # EnvConfig's defaults: the Nature pipeline
    finally:
        envs.close()


def test_an_env_of_several_levels_plays_one_drawn_per_episode():
    def draws(seed: int) -> list[str]:
        env = MarioEnv("1-1", "right_only", obs_type="gray", levels=["1-2", "4-1", "1-1"])
        assert [level.name for level in env.levels] == ["1-1", "1-2", "4-1"]  # once each
        played = []
        for episode in range(24):
            _, info = env.reset(seed=seed if episode == 0 else None)
            # The level's own game: its world and stage, at its start, and no warp exit
            # when it is stepped (the warp check reads the level being played).
            assert f"{info['world']}-{info['stage']}" == info["level"] and info["x_pos"] == 40
            _, _, terminated, _, step_info = env.step(RIGHT_RUN)
            assert not terminated and "exit" not in step_info
            played.append(info["level"])
        env.close()
        return played

    played = draws(seed=3)
    assert set(played) == {"1-1", "1-2", "4-1"}
    assert draws(seed=3) == played  # the env's seed fixes the draws


def test_a_snapshot_or_the_level_option_picks_the_level_of_several():
    env = MarioEnv("1-1", "right_only", obs_type="gray", levels=["4-1"])
    env.reset(seed=0, options={"level": "4-1"})
    for _ in range(40):
        _, _, _, _, info = env.step(RIGHT_RUN)
    snapshot = env.snapshot()
    assert snapshot.level == "4-1"
    for _ in range(5):  # whatever the draw would have been
        _, again = env.reset(options={"snapshot": snapshot})
        assert again["level"] == "4-1" and again["x_pos"] == info["x_pos"]
    assert env.reset(options={"level": "1-1"})[1]["level"] == "1-1"
    with pytest.raises(ValueError, match="expected one of this env's levels"):
        env.reset(options={"level": "2-1"})
    env.close()
    with pytest.raises(ValueError, match="the full game is one already"):
        MarioEnv("full", "right_only", levels=["1-2"])


def test_evaluation_of_a_many_level_config_plays_one_level():
    from mario_rl.evaluate import eval_env_config

    config = EnvConfig(level="1-1", levels=("SuperMarioBros-1-2-v0", "4-1"))
    assert config.levels == ("1-2", "4-1")
    env = make_env(config, seed=0)
    assert [level.name for level in env.unwrapped.levels] == ["1-1", "1-2", "4-1"]
    env.close()
    single = eval_env_config(config, "4-1", noop_max=0, max_stuck_steps=10)
    assert single.level == "4-1" and single.levels == ()
