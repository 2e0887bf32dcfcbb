"""How a single level's episode ends besides death and the flag: warps and castle loops,
and a fall out of a cloud area that does not end it, on the real emulator
(docs/level-mechanics.md, sections 2 and 3, R5)."""

from mario_rl.env.core import DEATH_PENALTY, MarioEnv
from mario_rl.env.ram import (
    CLOUD_AREA,
    ENTRANCE_MODE,
    LEAVING_CLOUD,
    LIVES,
    PLAYER_Y_VIEWPORT,
    STAGE,
    STAR_TIMER,
    WORLD,
)

# Recorded inputs that walk 4-4's lower path into its first loop: (action, frames) with
# action 0 = right+B and 1 = right+A+B, a star's invincibility poked in every frame so
# that firebars cannot end the run first (the loop check does not read it).
LOWER_PATH_OF_4_4 = [(0, 35), (1, 22), (0, 152), (1, 22), (0, 141)]


def replay_with_star(env: MarioEnv, inputs: list[tuple[int, int]]) -> tuple[int, int, dict]:
    """Play (action, frames) `inputs` from a reset, a star's invincibility poked in every
    frame; returns (steps taken, the best x before the last step, the last step's result:
    reward, terminated and info)."""
    env.reset(seed=0)
    steps = [action for action, frames in inputs for _ in range(frames)]
    best_x, taken = 0, 0
    for action in steps:
        env.ram[STAR_TIMER] = 0x20
        _, reward, terminated, _, info = env.step(action)
        taken += 1
        if terminated:
            break
        best_x = max(best_x, info["x_pos"])
    env.close()
    return taken, best_x, {"reward": reward, "terminated": terminated, "info": info}


def test_walking_4_4s_wrong_path_ends_at_the_loop_as_a_failure():
    env = MarioEnv("4-4", [("right", "B"), ("right", "A", "B")], obs_type="gray")
    taken, best_x, last = replay_with_star(env, LOWER_PATH_OF_4_4)
    info = last["info"]
    assert taken == sum(frames for _, frames in LOWER_PATH_OF_4_4), f"ended early: {info}"
    assert last["terminated"] and info["exit"] == "loop"
    # Sent back 4 pages (1024 px): the 1000-px drop is not paid, the failure is, and the x
    # reported is where Mario got to, not where the game put him.
    assert best_x > 1000 and best_x <= info["x_pos"] < best_x + 5
    assert last["reward"] <= DEATH_PENALTY + 1


# RIGHT_ONLY inputs (action index into RIGHT_ONLY_BUTTONS, frames) that reach 8-4's first
# loop so that Mario crosses from page 4 into page 5 on the very frame the game sends him
# back: his page drops by 3 (4 -> 1), the screen's by 4 (found by a random search).
RIGHT_ONLY_BUTTONS = [(), ("right",), ("right", "A"), ("right", "B"), ("right", "A", "B")]
INTO_8_4S_FIRST_LOOP = [
    (3, 19), (1, 15), (2, 8), (4, 11), (3, 8), (2, 5), (0, 10), (4, 7), (2, 14), (4, 20),
    (3, 16), (4, 20), (3, 8), (3, 13), (4, 12), (1, 5), (4, 19), (1, 24), (4, 8), (4, 18),
    (1, 17), (2, 12), (3, 11), (3, 23), (4, 19), (3, 12), (1, 5), (0, 23), (4, 5), (1, 7),
    (3, 18), (3, 14), (2, 17), (4, 20), (0, 11), (4, 19), (4, 4), (2, 13), (1, 17), (2, 4),
    (2, 13), (2, 17), (0, 11), (3, 3),
]  # fmt: skip


def test_a_loop_that_sends_mario_back_as_he_crosses_a_page_is_still_a_loop():
    env = MarioEnv("8-4", RIGHT_ONLY_BUTTONS, obs_type="gray")
    taken, best_x, last = replay_with_star(env, INTO_8_4S_FIRST_LOOP)
    info = last["info"]
    assert taken == sum(frames for _, frames in INTO_8_4S_FIRST_LOOP), f"ended early: {info}"
    assert last["terminated"] and info["exit"] == "loop"
    assert best_x == 1279 and info["x_pos"] == 1279
    assert last["reward"] <= DEATH_PENALTY + 1


# RIGHT_ONLY inputs along 4-4's lower path that stop short of the first loop's page, so
# the game sends Mario back from page 3: his page wraps to 0xFF (x 65535 read raw), as 4
# of 12,044 training episodes of the campaign's 4-4 met it (found by a search over stops).
INTO_4_4S_FIRST_LOOP_FROM_PAGE_3 = [(3, 35), (4, 22), (3, 152), (4, 22), (3, 120), (0, 25)]


def test_a_loop_that_wraps_marios_page_below_0_reports_where_he_got_to():
    env = MarioEnv("4-4", RIGHT_ONLY_BUTTONS, obs_type="gray")
    taken, best_x, last = replay_with_star(env, INTO_4_4S_FIRST_LOOP_FROM_PAGE_3)
    info = last["info"]
    assert taken == sum(frames for _, frames in INTO_4_4S_FIRST_LOOP_FROM_PAGE_3)
    assert last["terminated"] and info["exit"] == "loop"
    # Read raw, the loop's frame had Mario at page 0xFF (x 65535, 65534: the commit before
    # reported that); his x is where he got to.
    assert info["x_pos"] == best_x == 1022


def test_entering_a_warp_pipe_ends_the_episode_with_the_exit_taken_and_no_penalty():
    env = MarioEnv("1-2", "right_only", obs_type="gray")
    env.reset(seed=0)
    for _ in range(30):
        _, _, terminated, _, info = env.step(1)
        assert not terminated and "exit" not in info
    # What the game writes on the frame Mario presses down on world 4's warp pipe.
    env.ram[WORLD], env.ram[STAGE] = 3, 0
    _, reward, terminated, _, info = env.step(0)
    env.close()
    assert terminated and info["exit"] == "warp 4-1"
    assert reward > DEATH_PENALTY / 2


def test_the_full_game_does_not_end_at_a_stage_change():
    env = MarioEnv("full", "right_only", obs_type="gray")
    env.reset(seed=0)
    env.ram[WORLD], env.ram[STAGE] = 0, 1
    _, _, terminated, _, info = env.step(0)
    env.close()
    assert not terminated and "exit" not in info


def test_falling_out_of_a_cloud_area_is_the_way_back_not_a_death():
    # Mario put below the screen, as a fall off a platform leaves him: in a cloud
    # (coin-heaven) area the game takes him back to the level (AltEntranceControl 3), keeping
    # his life; anywhere else the fall is a death.
    def fall(cloud_area: int) -> tuple[bool, float, int, int]:
        env = MarioEnv("2-1", "right_only", obs_type="gray")
        env.reset(seed=0)
        for _ in range(60):
            env.step(0)
        lives = int(env.ram[LIVES])
        env.ram[CLOUD_AREA], env.ram[PLAYER_Y_VIEWPORT] = cloud_area, 2
        total, left_cloud = 0.0, False
        for _ in range(300):
            _, reward, terminated, _, info = env.step(0)
            total += reward
            left_cloud |= int(env.ram[ENTRANCE_MODE]) == LEAVING_CLOUD
            if terminated:
                break
        env.close()
        return terminated, total, lives - info["life"], left_cloud

    terminated, total, lives_lost, left_cloud = fall(cloud_area=1)
    assert left_cloud and not terminated and lives_lost == 0 and total > DEATH_PENALTY
    terminated, total, _, left_cloud = fall(cloud_area=0)
    assert terminated and not left_cloud and total == DEATH_PENALTY
