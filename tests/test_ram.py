"""Tests for the SMB RAM reader: against the game's own info, and on hand-made RAM."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from gym_super_mario_bros import SuperMarioBrosEnv
from gym_super_mario_bros.actions import SIMPLE_MOVEMENT

from mario_rl.env import ram as smb

BUTTON_BITS = {
    "right": 128,
    "left": 64,
    "down": 32,
    "up": 16,
    "start": 8,
    "select": 4,
    "B": 2,
    "A": 1,
    "NOOP": 0,
}
RIGHT, A, B = BUTTON_BITS["right"], BUTTON_BITS["A"], BUTTON_BITS["B"]
SIMPLE_ACTION_BYTES = [sum(BUTTON_BITS[button] for button in combo) for combo in SIMPLE_MOVEMENT]
POWER_BY_STATUS = {"small": 0, "tall": 1, "fireball": 2}
GOOMBA = 0x06

# Mario standing on the ground of 1-1 at its start, in screen pixels.
MARIO_X = 40
GROUND_Y = 176
MARIO_ROW = 10  # (176 + 24 - 32) // 16
# Hand-made RAM puts the screen on level page 1, so there is room for enemies on the left.
MARIO_LEVEL_X = 256 + MARIO_X
MARIO_COL = (MARIO_LEVEL_X + 8) // 16  # level tile column 19, grid column 3


class InfoRamEnv(SuperMarioBrosEnv):
    """Keeps a copy of the RAM at the moment the info dict is built.

    `step` builds info before `_did_step`, which may run extra frames to skip transitions,
    so `env.ram` after `step` can be a few frames past what info describes.
    """

    def _get_info(self) -> dict:
        self.info_ram = self.ram.copy()
        return super()._get_info()


def make_env(world: int, stage: int) -> InfoRamEnv:
    env = InfoRamEnv(target=(world, stage))
    env.reset(seed=0)
    return env


@pytest.fixture
def env_1_1() -> Iterator[InfoRamEnv]:
    env = make_env(1, 1)
    yield env
    env.close()


def blank_ram(bytes_at: dict[int, int] | None = None) -> np.ndarray:
    """Zeroed RAM: small Mario on the ground at screen (40, 176), the screen on level page 1,
    then `bytes_at` ({address: value}) written over it."""
    ram = np.zeros(smb.RAM_SIZE, dtype=np.uint8)
    ram[smb.PLAYER_PAGE] = ram[smb.SCREEN_LEFT_PAGE] = 1
    ram[smb.PLAYER_X] = MARIO_X
    ram[smb.PLAYER_Y] = ram[smb.PLAYER_Y_PIXEL] = GROUND_Y
    ram[smb.PLAYER_Y_VIEWPORT] = 1
    for address, value in (bytes_at or {}).items():
        ram[address] = value
    return ram


def put_enemy(ram: np.ndarray, slot: int, x: int, y: int, kind: int = GOOMBA) -> None:
    """Put a live enemy at level x and screen y (top of its box) in `slot`."""
    ram[smb.ENEMY_DRAWN + slot] = 1
    ram[smb.ENEMY_KIND + slot] = kind
    ram[smb.ENEMY_PAGE + slot], ram[smb.ENEMY_X + slot] = divmod(x, 256)
    ram[smb.ENEMY_Y_VIEWPORT + slot] = 1
    ram[smb.ENEMY_Y + slot] = y


def put_block(ram: np.ndarray, level_col: int, row: int, tile: int = 0x54) -> None:
    page = (level_col // 16) % 2
    ram[smb.BLOCK_BUFFER + page * smb.BLOCK_PAGE_BYTES + row * 16 + level_col % 16] = tile


def walk_right(env: InfoRamEnv, frames: int) -> None:
    for _ in range(frames):
        env.step(RIGHT)


def play(env: InfoRamEnv, frames: int, choose: Callable[[np.ndarray, int], int]) -> Iterator[int]:
    """Step `frames` frames with `choose(ram, frame)`, yielding the frame index after each."""
    for frame in range(frames):
        _, _, terminated, truncated, _ = env.step(choose(env.ram, frame))
        yield frame
        if terminated or truncated:
            return


# --- against the game's own info ---------------------------------------------------------


def assert_matches_info(ram: np.ndarray, info: dict) -> None:
    mario = smb.read_mario(ram)
    assert mario.x == info["x_pos"]
    assert mario.y == info["y_pos"]
    assert mario.screen_x == info["left_x_pos"]
    assert (mario.world, mario.stage) == (info["world"], info["stage"])
    assert mario.power == POWER_BY_STATUS[info["status"]] == info["powerup_level"]
    assert mario.time == info["time"]
    assert mario.lives == info["life"]
    assert mario.player_state == info["player_state"]
    assert tuple(smb.enemies(ram).kind.tolist()) == info["enemy_types"]


RANDOM_ACTIONS = 300
LONGEST_HOLD = 8  # frames an action is held, so Mario actually runs and jumps


@pytest.mark.parametrize(("world", "stage", "seed"), [(1, 1, 1), (1, 2, 2), (4, 1, 3)])
def test_read_mario_matches_info_along_random_trajectories(
    world: int, stage: int, seed: int
) -> None:
    env = make_env(world, stage)
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    assert_matches_info(env.info_ram, info)
    x_positions, memory = set(), None
    for _ in range(RANDOM_ACTIONS):
        action = SIMPLE_ACTION_BYTES[rng.integers(len(SIMPLE_ACTION_BYTES))]
        for _ in range(rng.integers(1, LONGEST_HOLD)):
            _, _, terminated, truncated, info = env.step(action)
            assert_matches_info(env.info_ram, info)
            x_positions.add(info["x_pos"])
            # The symbolic state of real frames always packs (no field out of range).
            state = smb.symbolic_state(env.ram, memory)
            assert smb.unpack_symbolic(smb.pack_symbolic(state)) == state
            memory = smb.remember(env.ram, memory)
            if terminated or truncated:
                _, info = env.reset()
                assert_matches_info(env.info_ram, info)
                memory = None
                break
    env.close()
    assert len(x_positions) > 100  # Mario went places


def test_tile_grid_at_the_start_of_1_1_is_two_rows_of_ground(env_1_1: InfoRamEnv) -> None:
    grid = smb.tile_grid(env_1_1.ram)
    assert grid.shape == (smb.GRID_ROWS, smb.GRID_COLS) and grid.dtype == np.uint8
    assert grid[11:].all() and not grid[:11].any()
    assert smb.mario_tile(env_1_1.ram) == (MARIO_ROW, (MARIO_X + 8) // 16)
    assert smb.obstacles_ahead(env_1_1.ram) == (False, False, False, False)


def test_walking_into_the_first_pipe_of_1_1_blocks_and_sticks(env_1_1: InfoRamEnv) -> None:
    ram = env_1_1.ram
    memory = None
    for _ in range(100):
        for _ in range(4):
            ram[smb.ENEMY_DRAWN : smb.ENEMY_DRAWN + smb.ENEMY_SLOTS] = 0  # no goomba in the way
            env_1_1.step(RIGHT)
        state = smb.symbolic_state(ram, memory, stuck_after=5)
        memory = smb.remember(ram, memory)
    # The pipe is two tiles tall, right in front of Mario's feet.
    assert smb.obstacles_ahead(ram) == (True, True, False, False)
    assert state.obstacles == (True, True, False, False) and state.stuck
    row, col = smb.mario_tile(ram)
    grid = smb.tile_grid(ram)
    assert row == MARIO_ROW
    assert grid[row, col + 1] == grid[row - 1, col + 1] == 1 and grid[row - 2, col + 1] == 0
    assert grid[row, col] == 0 and grid[row + 1, col] == 1  # standing on the ground


def _goomba_distance(ram: np.ndarray) -> int:
    return int(smb.enemy_offsets(ram)[0][0])


def test_stomping_the_first_goomba_counts_one_stomp(env_1_1: InfoRamEnv) -> None:
    ram = env_1_1.ram
    walk_right(env_1_1, 100)
    # Wait for the goomba, then jump straight up as it arrives; hold A until landing.
    kills, stomp_flags, jumped, memory = [], [], False, smb.remember(ram, None)

    def choose(ram: np.ndarray, frame: int) -> int:
        nonlocal jumped
        near = ram[smb.ENEMY_DRAWN] and _goomba_distance(ram) < 24
        jumped = jumped or bool(near)
        return A if jumped and (near or ram[smb.FLOAT_STATE]) else 0

    for _ in play(env_1_1, 250, choose):
        kills.append(smb.count_kills(memory.enemy_states, ram))
        stomp_flags.append(smb.symbolic_state(ram, memory).stomp_kill)
        memory = smb.remember(ram, memory)
    assert sum(k.stomp for k in kills) == 1
    assert sum(k.fire + k.other for k in kills) == 0
    assert sum(stomp_flags) == 1


def test_burning_the_first_goomba_counts_one_fire_kill(env_1_1: InfoRamEnv) -> None:
    ram = env_1_1.ram
    ram[smb.POWER], ram[0x0754] = 2, 0  # fire Mario (0x754 is the body size, 0 = big)
    walk_right(env_1_1, 90)
    previous, kills = ram.copy(), []
    for _ in play(env_1_1, 60, lambda ram, frame: RIGHT | (B if frame % 2 == 0 else 0)):
        kills.append(smb.count_kills(previous, ram))
        previous = ram.copy()
    assert sum(k.fire for k in kills) == 1
    assert sum(k.stomp + k.other for k in kills) == 0


def test_walking_into_the_first_goomba_big_is_a_collision(env_1_1: InfoRamEnv) -> None:
    ram = env_1_1.ram
    ram[smb.POWER], ram[0x0754] = 1, 0
    memory, collisions = None, []
    for _ in play(env_1_1, 200, lambda ram, frame: RIGHT):
        collisions.append(smb.symbolic_state(ram, memory).collided)
        memory = smb.remember(ram, memory)
    assert sum(collisions) == 1
    assert smb.read_mario(ram).power == 0


def test_walking_into_the_first_goomba_small_is_a_collision(env_1_1: InfoRamEnv) -> None:
    ram = env_1_1.ram
    memory, collisions = None, []
    for _ in play(env_1_1, 200, lambda ram, frame: RIGHT):
        collisions.append(smb.symbolic_state(ram, memory).collided)
        memory = smb.remember(ram, memory)
    assert collisions[-1] and sum(collisions) == 1
    assert smb.read_mario(ram).player_state == smb.PLAYER_DYING


# --- read_mario on hand-made RAM -----------------------------------------------------------


def test_read_mario_fields_from_hand_made_ram() -> None:
    ram = blank_ram({0x6D: 2, 0x86: 0x10, 0x71C: 0xF0, 0x756: 1, 0x75A: 2, 0x75F: 3})
    ram[smb.TIME_DIGITS : smb.TIME_DIGITS + 3] = (3, 0, 7)
    ram[smb.STAGE], ram[smb.PLAYER_STATE] = 1, 0x08
    mario = smb.read_mario(ram)
    assert mario == smb.MarioRamState(
        x=2 * 256 + 0x10,
        y=255 - GROUND_Y,
        screen_x=0x20,  # (0x10 - 0xF0) mod 256: the screen's left edge is on the page before
        velocity_sign=0,
        vertical_velocity_sign=0,
        on_ground=True,
        power=1,
        lives=2,
        time=307,
        world=4,
        stage=2,
        player_state=0x08,
    )


def test_read_mario_y_above_the_screen_keeps_growing() -> None:
    ram = blank_ram({0xB5: 0, 0x3B8: 200})
    assert smb.read_mario(ram).y == 255 + (255 - 200)


@pytest.mark.parametrize(
    ("x_speed", "y_speed", "signs"),
    [(0x18, 0, (1, 0)), (0xE8, 0, (-1, 0)), (0, 0xFC, (0, 1)), (0x01, 0x04, (1, -1))],
)
def test_velocity_signs_read_signed_bytes_with_up_positive(
    x_speed: int, y_speed: int, signs: tuple[int, int]
) -> None:
    mario = smb.read_mario(blank_ram({0x57: x_speed, 0x9F: y_speed}))
    assert (mario.velocity_sign, mario.vertical_velocity_sign) == signs


@pytest.mark.parametrize(("raw", "power"), [(0, 0), (1, 1), (2, 2), (7, 2)])
def test_power_caps_at_fire(raw: int, power: int) -> None:
    assert smb.read_mario(blank_ram({0x756: raw})).power == power


@pytest.mark.parametrize(
    "bad",
    [np.zeros(2048, dtype=np.int64), np.zeros(2047, dtype=np.uint8), [0] * 2048],
    ids=["dtype", "shape", "list"],
)
def test_functions_reject_what_is_not_nes_ram(bad: object) -> None:
    with pytest.raises(ValueError, match=r"expected NES RAM .* env\.unwrapped\.ram"):
        smb.read_mario(bad)  # type: ignore[arg-type]


# --- tile grid -------------------------------------------------------------------------


def test_tile_grid_reads_both_pages_from_the_screen_left_edge() -> None:
    # Screen left edge at level x 304: tile column 19, i.e. column 3 of page 1; the grid's
    # last three columns (level 32..34) wrap onto page 0.
    ram = blank_ram({0x71A: 1, 0x71C: 0x30})
    put_block(ram, level_col=19, row=0)
    put_block(ram, level_col=25, row=12)
    put_block(ram, level_col=34, row=6)
    put_block(ram, level_col=18, row=6)  # just off screen to the left
    expected = np.zeros((13, 16), dtype=np.uint8)
    expected[0, 0] = expected[12, 6] = expected[6, 15] = 1
    np.testing.assert_array_equal(smb.tile_grid(ram), expected)


def test_tile_grid_treats_any_nonzero_tile_as_solid() -> None:
    ram = blank_ram()
    for col, tile in enumerate((0x01, 0x54, 0xC2, 0xFF)):
        put_block(ram, level_col=16 + col, row=3, tile=tile)
    assert smb.tile_grid(ram)[3].tolist() == [1, 1, 1, 1] + [0] * 12


@pytest.mark.parametrize(
    ("bytes_at", "tile"),
    [
        ({}, (MARIO_ROW, 3)),
        ({0x71C: 0x10}, (MARIO_ROW, 2)),  # screen scrolled one tile right
        ({0xCE: GROUND_Y - 16}, (MARIO_ROW - 1, 3)),  # one tile up
        ({0xCE: 8}, (0, 3)),  # lower body at the top row
        ({0xCE: 250, 0xB5: 0}, (-1, 3)),  # above the screen
        ({0x86: 0xF8, 0x6D: 1, 0x71A: 1, 0x71C: 0xF0}, (MARIO_ROW, 1)),  # next page
        # Just after 4-4's first loop (recorded): the screen's left page wrapped 3 -> 0xFF.
        ({0x86: 16, 0x6D: 0, 0x71A: 0xFF, 0x71C: 153}, (MARIO_ROW, 8)),
    ],
)
def test_mario_tile_is_the_tile_at_his_lower_body_centre(
    bytes_at: dict[int, int], tile: tuple[int, int]
) -> None:
    assert smb.mario_tile(blank_ram(bytes_at)) == tile


def test_obstacles_ahead_are_the_column_right_of_mario_from_his_feet_up() -> None:
    ram = blank_ram()
    put_block(ram, level_col=MARIO_COL + 1, row=MARIO_ROW)
    put_block(ram, level_col=MARIO_COL + 1, row=MARIO_ROW - 2)
    put_block(ram, level_col=MARIO_COL + 1, row=MARIO_ROW - 4)  # above the 4 rows looked at
    put_block(ram, level_col=MARIO_COL, row=MARIO_ROW - 1)  # Mario's own column
    assert smb.obstacles_ahead(ram) == (True, False, True, False)


def test_obstacles_ahead_outside_the_grid_are_empty() -> None:
    ram = blank_ram({0xCE: 8})  # lower body on row 0: rows -1..-3 are off the grid
    put_block(ram, level_col=MARIO_COL + 1, row=0)
    put_block(ram, level_col=MARIO_COL + 1, row=12)  # would be row -1 wrapped around
    assert smb.obstacles_ahead(ram) == (True, False, False, False)


# --- enemies ---------------------------------------------------------------------------


def test_enemies_reads_the_five_slots() -> None:
    ram = blank_ram()
    put_enemy(ram, slot=2, x=288, y=184)
    ram[smb.ENEMY_STATE + 2] = 0x22
    ram[smb.ENEMY_KIND + 4] = 0x31  # a flag, slot not drawn
    slots = smb.enemies(ram)
    assert slots.drawn.tolist() == [False, False, True, False, False]
    assert slots.kind.tolist() == [0, 0, GOOMBA, 0, 0x31]
    assert slots.state.tolist() == [0, 0, 0x22, 0, 0]
    assert slots.x[2] == 288 and slots.y[2] == 255 - 184
    ram[smb.ENEMY_KIND + 2] = 0  # the arrays are copies, not views of the RAM
    assert slots.kind[2] == GOOMBA


def test_enemy_offsets_are_zero_dy_for_an_enemy_on_marios_floor() -> None:
    ram = blank_ram()
    put_enemy(ram, slot=0, x=MARIO_LEVEL_X + 32, y=184)  # measured: a goomba on 1-1's ground
    put_enemy(ram, slot=1, x=MARIO_LEVEL_X - 20, y=184 - 48)
    dx, dy = smb.enemy_offsets(ram)
    assert (dx[0], dy[0]) == (32, 0)
    assert (dx[1], dy[1]) == (-20, 48)


def _ranges(ram: np.ndarray) -> dict[int, int]:
    return {
        name: window
        for name, window in zip(smb.DIRECTIONS, smb.enemy_ranges(ram).tolist(), strict=True)
        if window
    }


ENEMY_ON_GROUND_Y = 184  # an enemy whose body is on Mario's row


@pytest.mark.parametrize(
    ("d_col", "d_row", "expected"),
    [
        (1, 0, {"E": smb.RANGE_NEAR}),
        (3, 0, {"E": smb.RANGE_MID}),
        (5, 0, {"E": smb.RANGE_FAR}),
        (6, 0, {}),
        (-2, 0, {"W": smb.RANGE_MID}),
        (0, -1, {"N": smb.RANGE_NEAR}),
        (0, 2, {"S": smb.RANGE_MID}),
        (1, -1, {"NE": smb.RANGE_NEAR}),
        (2, 1, {"SE": smb.RANGE_MID}),
        (-1, 1, {"SW": smb.RANGE_NEAR}),
        (-4, -5, {"NW": smb.RANGE_FAR}),
        (-1, -6, {}),
    ],
)
def test_enemy_ranges_by_direction_and_window(
    d_col: int, d_row: int, expected: dict[int, int]
) -> None:
    ram = blank_ram()
    put_enemy(ram, slot=0, x=MARIO_LEVEL_X + 16 * d_col, y=ENEMY_ON_GROUND_Y + 16 * d_row)
    assert _ranges(ram) == expected


def test_enemy_windows_are_one_tile_taller_for_big_mario() -> None:
    ram = blank_ram()
    put_enemy(ram, slot=0, x=MARIO_LEVEL_X, y=ENEMY_ON_GROUND_Y - 2 * 16)
    put_enemy(ram, slot=1, x=MARIO_LEVEL_X + 16, y=ENEMY_ON_GROUND_Y - 16)
    assert _ranges(ram) == {"N": smb.RANGE_MID, "NE": smb.RANGE_NEAR}
    ram[smb.POWER] = 1  # big Mario's head is on the row above: that enemy is now level
    assert _ranges(ram) == {"N": smb.RANGE_NEAR, "E": smb.RANGE_NEAR}


def test_enemy_ranges_keep_the_nearest_window_per_direction() -> None:
    ram = blank_ram()
    put_enemy(ram, slot=0, x=MARIO_LEVEL_X + 16 * 4, y=ENEMY_ON_GROUND_Y)
    put_enemy(ram, slot=3, x=MARIO_LEVEL_X + 16 * 2, y=ENEMY_ON_GROUND_Y)
    assert _ranges(ram) == {"E": smb.RANGE_MID}
    # Read as rings, both are there: mid (2 tiles) and far (4 tiles) east.
    rings = smb.enemy_rings(ram)
    assert rings[smb.DIRECTIONS.index("E")].tolist() == [False, True, True]
    assert rings.sum() == 2


def test_the_nearest_ring_of_each_direction_is_its_enemy_range(env_1_1: InfoRamEnv) -> None:
    rng = np.random.default_rng(4)
    seen_enemy = False
    for frame in play(env_1_1, 900, lambda ram, frame: RIGHT if rng.random() < 0.7 else 0):
        if frame % 6:
            continue
        ram = env_1_1.ram
        rings, ranges = smb.enemy_rings(ram), smb.enemy_ranges(ram)
        nearest = [int(np.argmax(row)) + 1 if row.any() else 0 for row in rings]
        assert nearest == ranges.tolist()
        seen_enemy |= bool(ranges.any())
    assert seen_enemy


@pytest.mark.parametrize(("dx", "direction"), [(4, "E"), (0, "E"), (-4, "W")])
def test_enemy_in_marios_own_tile_is_east_or_west_by_pixels(dx: int, direction: str) -> None:
    ram = blank_ram()
    put_enemy(ram, slot=1, x=MARIO_LEVEL_X + dx, y=ENEMY_ON_GROUND_Y)
    assert _ranges(ram) == {direction: smb.RANGE_NEAR}


@pytest.mark.parametrize(
    ("drawn", "kind", "state"),
    [(0, GOOMBA, 0), (1, 0x25, 0), (1, 0x31, 0), (1, GOOMBA, 0x22), (1, GOOMBA, 0x04)],
    ids=["not-drawn", "platform", "flag", "falling-dead", "flattened"],
)
def test_enemy_ranges_ignore_what_cannot_hurt(drawn: int, kind: int, state: int) -> None:
    ram = blank_ram()
    put_enemy(ram, slot=0, x=MARIO_LEVEL_X + 16, y=ENEMY_ON_GROUND_Y, kind=kind)
    ram[smb.ENEMY_DRAWN], ram[smb.ENEMY_STATE] = drawn, state
    assert _ranges(ram) == {}


def test_bowser_and_moving_shells_count_as_enemies() -> None:
    ram = blank_ram()
    put_enemy(ram, slot=0, x=MARIO_LEVEL_X + 16, y=ENEMY_ON_GROUND_Y, kind=smb.BOWSER_KIND)
    put_enemy(ram, slot=1, x=MARIO_LEVEL_X - 16, y=ENEMY_ON_GROUND_Y, kind=0x00)
    ram[smb.ENEMY_STATE + 1] = 0x84  # kicked koopa shell
    assert _ranges(ram) == {"E": smb.RANGE_NEAR, "W": smb.RANGE_NEAR}


# --- kills -----------------------------------------------------------------------------


def kill_ram(state: int, bytes_at: dict[int, int] | None = None) -> np.ndarray:
    ram = blank_ram(bytes_at)
    put_enemy(ram, slot=1, x=MARIO_LEVEL_X + 16, y=ENEMY_ON_GROUND_Y)
    ram[smb.ENEMY_STATE + 1] = state
    return ram


@pytest.mark.parametrize(
    ("before", "after", "bytes_at", "expected"),
    [
        (0x00, 0x04, {}, (1, 0, 0)),  # goomba flattened / koopa into its shell
        (0x00, 0x20, {0x9F: 0xFD}, (1, 0, 0)),  # stomped cheep-cheep etc.: Mario bounces
        (0x00, 0x22, {0x24: 0x80}, (0, 1, 0)),  # fireball exploding
        (0x00, 0x20, {0x25: 0x81, 0x9F: 0xFD}, (0, 1, 0)),  # fire wins over a bounce
        (0x00, 0x04, {0x24: 0x80}, (1, 0, 0)),  # 0x04 is only ever a stomp
        (0x00, 0x22, {}, (0, 0, 1)),  # shell or bumped block
        (0x00, 0x20, {}, (0, 0, 1)),  # d5 without a bounce
        (0x00, 0x20, {0x9F: 0xFD, 0x79F: 5}, (0, 0, 1)),  # star Mario rising
        (0x84, 0x22, {0x24: 0x80}, (0, 1, 0)),  # a kicked shell burnt
        (0x04, 0x04, {}, (0, 0, 0)),  # still flattened
        (0x04, 0x22, {0x24: 0x80}, (0, 0, 0)),  # already counted
        (0x22, 0x22, {0x24: 0x80}, (0, 0, 0)),
        (0x00, 0x01, {0x24: 0x80}, (0, 0, 0)),  # alive
    ],
)
def test_count_kills_rule(
    before: int, after: int, bytes_at: dict[int, int], expected: tuple[int, int, int]
) -> None:
    previous = kill_ram(before)
    kills = smb.count_kills(previous, kill_ram(after, bytes_at))
    assert (kills.stomp, kills.fire, kills.other) == expected


def test_count_kills_takes_previous_ram_or_its_enemy_states() -> None:
    previous, ram = kill_ram(0x00), kill_ram(0x04)
    states = tuple(previous[smb.ENEMY_STATE : smb.ENEMY_STATE + 5].tolist())
    assert smb.count_kills(previous, ram) == smb.count_kills(states, ram)
    assert smb.count_kills(states, ram).stomp == 1
    with pytest.raises(ValueError, match="expected the previous RAM"):
        smb.count_kills((0, 0, 0), ram)


def test_count_kills_counts_every_slot_and_ignores_empty_ones() -> None:
    previous = blank_ram()
    ram = blank_ram({0x24: 0x80})
    for slot in range(smb.ENEMY_SLOTS):
        put_enemy(ram, slot=slot, x=100 + 20 * slot, y=100)
    ram[smb.ENEMY_STATE : smb.ENEMY_STATE + 5] = (0x04, 0x22, 0x23, 0x00, 0x04)
    ram[smb.ENEMY_DRAWN + 4] = 0
    kills = smb.count_kills(previous, ram)
    assert kills == smb.KillCount(stomp=1, fire=2, other=0)
    assert all(type(count) is int for count in (kills.stomp, kills.fire, kills.other))


# --- symbolic state --------------------------------------------------------------------


@pytest.mark.parametrize(("power", "mode"), [(0, 0), (1, 1), (2, 2)])
def test_symbolic_mode_is_power(power: int, mode: int) -> None:
    assert smb.symbolic_state(blank_ram({0x756: power}), None).mode == mode


@pytest.mark.parametrize("x_speed", [0xF0, 0x00, 0x10])
@pytest.mark.parametrize("y_speed", [0x03, 0x00, 0xFD])
def test_symbolic_direction_covers_the_nine_motions(x_speed: int, y_speed: int) -> None:
    state = smb.symbolic_state(blank_ram({0x57: x_speed, 0x9F: y_speed}), None)
    horizontal = {0xF0: -1, 0x00: 0, 0x10: 1}[x_speed]
    vertical = {0x03: -1, 0x00: 0, 0xFD: 1}[y_speed]  # rising is +1
    assert state.direction == 3 * (horizontal + 1) + (vertical + 1)
    assert state.direction == smb.motion_direction(horizontal, vertical)


def test_motion_direction_numbers_the_nine_pairs_once() -> None:
    indices = {smb.motion_direction(h, v) for h in (-1, 0, 1) for v in (-1, 0, 1)}
    assert indices == set(range(smb.MOTION_DIRECTIONS))
    assert smb.motion_direction(0, 0) == 4 and smb.motion_direction(1, 1) == 8


def test_symbolic_stuck_after_x_stays_put_for_stuck_after_decisions() -> None:
    ram = blank_ram()
    memory, stuck = None, []
    for _ in range(5):
        stuck.append(smb.symbolic_state(ram, memory, stuck_after=3).stuck)
        memory = smb.remember(ram, memory)
    assert stuck == [False, False, False, True, True]
    assert memory is not None and memory.steps_still == 4
    ram[smb.PLAYER_X] += 1  # moving resets the count
    assert not smb.symbolic_state(ram, memory, stuck_after=3).stuck
    assert smb.remember(ram, memory).steps_still == 0
    with pytest.raises(ValueError, match="stuck_after >= 1"):
        smb.symbolic_state(ram, memory, stuck_after=0)


@pytest.mark.parametrize(
    ("bytes_at", "on_ground", "can_jump"),
    [
        ({}, True, True),
        ({0x0A: 0x80}, True, False),  # A still held: the game needs a fresh press
        ({0x0A: 0x40}, True, True),  # B held does not matter
        ({0x1D: 1}, False, False),  # jumping
        ({0x1D: 2}, False, False),  # falling
        ({0x1D: 2, 0x704: 1}, False, True),  # swimming
    ],
)
def test_symbolic_on_ground_and_can_jump(
    bytes_at: dict[int, int], on_ground: bool, can_jump: bool
) -> None:
    state = smb.symbolic_state(blank_ram(bytes_at), None)
    assert (state.on_ground, state.can_jump) == (on_ground, can_jump)


@pytest.mark.parametrize(
    ("before", "after", "collided"),
    [
        ({0x756: 1}, {0x756: 0}, True),  # hurt while big
        ({0x756: 2}, {0x756: 0}, True),
        ({0x756: 0}, {0x756: 1}, False),  # mushroom
        ({0x0E: 0x08}, {0x0E: 0x0B}, True),  # started dying
        ({0x0E: 0x0B}, {0x0E: 0x0B}, False),  # still dying
        ({}, {}, False),
    ],
)
def test_symbolic_collided(before: dict[int, int], after: dict[int, int], collided: bool) -> None:
    memory = smb.remember(blank_ram(before), None)
    assert smb.symbolic_state(blank_ram(after), memory).collided is collided
    assert not smb.symbolic_state(blank_ram(after), None).collided


def test_symbolic_kill_flags_come_from_the_remembered_enemy_states() -> None:
    memory = smb.remember(kill_ram(0x00), None)
    stomp = smb.symbolic_state(kill_ram(0x04), memory)
    fire = smb.symbolic_state(kill_ram(0x22, {0x24: 0x80}), memory)
    assert (stomp.stomp_kill, stomp.fire_kill) == (True, False)
    assert (fire.stomp_kill, fire.fire_kill) == (False, True)
    assert not smb.symbolic_state(kill_ram(0x04), None).stomp_kill


def test_symbolic_state_gathers_enemies_and_obstacles() -> None:
    ram = blank_ram()
    put_enemy(ram, slot=0, x=MARIO_LEVEL_X + 16 * 3, y=ENEMY_ON_GROUND_Y - 16)
    put_block(ram, level_col=MARIO_COL + 1, row=MARIO_ROW - 1)
    state = smb.symbolic_state(ram, None)
    assert state.enemy_ranges == (0, smb.RANGE_MID, 0, 0, 0, 0, 0, 0)
    assert state.obstacles == (False, True, False, False)
    flags = (state.on_ground, state.can_jump, state.stuck, state.stomp_kill, *state.obstacles)
    assert all(type(flag) is bool for flag in flags)  # plain Python values, hashable as keys


# --- pack / unpack ---------------------------------------------------------------------


def random_symbolic_state(rng: np.random.Generator) -> smb.SymbolicState:
    flags = rng.integers(0, 2, size=10).astype(bool).tolist()
    return smb.SymbolicState(
        mode=int(rng.integers(3)),
        direction=int(rng.integers(9)),
        stuck=flags[0],
        on_ground=flags[1],
        can_jump=flags[2],
        collided=flags[3],
        enemy_ranges=tuple(rng.integers(0, 4, size=8).tolist()),
        stomp_kill=flags[4],
        fire_kill=flags[5],
        obstacles=(flags[6], flags[7], flags[8], flags[9]),
    )


LOWEST = smb.SymbolicState(0, 0, False, False, False, False, (0,) * 8, False, False, (False,) * 4)
HIGHEST = smb.SymbolicState(2, 8, True, True, True, True, (3,) * 8, True, True, (True,) * 4)


def test_pack_unpack_round_trip_over_random_states() -> None:
    rng = np.random.default_rng(0)
    codes = set()
    for _ in range(3000):
        state = random_symbolic_state(rng)
        code = smb.pack_symbolic(state)
        assert 0 <= code < 2**smb.SYMBOLIC_CODE_BITS
        assert smb.unpack_symbolic(code) == state
        codes.add((code, state))
    assert len({code for code, _ in codes}) == len({state for _, state in codes})


def test_pack_unpack_round_trip_at_the_edges() -> None:
    assert smb.pack_symbolic(LOWEST) == 0
    assert smb.unpack_symbolic(0) == LOWEST
    assert smb.unpack_symbolic(smb.pack_symbolic(HIGHEST)) == HIGHEST
    assert smb.pack_symbolic(HIGHEST) < 2**32


def test_pack_symbolic_bit_layout_version_1() -> None:
    assert smb.SYMBOLIC_ENCODING_VERSION == 1 and smb.SYMBOLIC_CODE_BITS == 32
    state = dataclasses.replace(
        LOWEST,
        mode=2,
        direction=7,
        stuck=True,
        fire_kill=True,
        obstacles=(False, True, False, False),
        enemy_ranges=(0, 0, 1, 0, 0, 0, 0, 3),  # E near, NW far
    )
    expected = 2 | 7 << 2 | 1 << 6 | 1 << 11 | 1 << 13 | 1 << (16 + 2 * 2) | 3 << (16 + 2 * 7)
    assert smb.pack_symbolic(state) == expected


def test_pack_symbolic_accepts_numpy_scalars() -> None:
    state = dataclasses.replace(HIGHEST, mode=np.int64(1), stuck=np.True_)
    assert smb.unpack_symbolic(smb.pack_symbolic(state)) == dataclasses.replace(HIGHEST, mode=1)


@pytest.mark.parametrize(
    "changes",
    [
        {"mode": 3},
        {"mode": -1},
        {"direction": 9},
        {"enemy_ranges": (4, 0, 0, 0, 0, 0, 0, 0)},
        {"enemy_ranges": (0,) * 7},
        {"obstacles": (False,) * 5},
    ],
)
def test_pack_symbolic_rejects_out_of_range_fields(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="expected"):
        smb.pack_symbolic(dataclasses.replace(LOWEST, **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [-1, 2**32, 3, 9 << 2, 2**32 - 1])
def test_unpack_symbolic_rejects_codes_pack_cannot_produce(code: int) -> None:
    with pytest.raises(ValueError, match="expected"):
        smb.unpack_symbolic(code)
