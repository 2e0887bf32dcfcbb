"""Read Super Mario Bros. (NES) game state straight from the console's 2 KiB of RAM.

Every function here is pure: it takes the RAM as a ``numpy.ndarray`` of 2048 ``uint8``
(``env.unwrapped.ram`` is a live, zero-copy view of it) and returns plain values, so it
can be unit-tested on hand-made snapshots and called every step of a training loop.
Keep a ``.copy()`` of the array, not the view, if you need an older frame.

Addresses come from the Data Crystal SMB RAM map and the annotated SMB disassembly;
``y``, ``time``, ``power`` and ``screen_x`` follow ``gym_super_mario_bros.smb_env`` exactly,
so they equal ``info["y_pos"]``, ``info["time"]``, ``info["powerup_level"]`` and
``info["left_x_pos"]``.

Geometry conventions (all measured in this emulator, see ``tests/test_ram.py``):

- The level is a grid of 16x16 px tiles. The game keeps the tiles around the screen in a
  "block buffer" at 0x500: two pages of 13 rows x 16 columns (0xD0 bytes each, row-major);
  level tile column ``c`` lives on page ``(c // 16) % 2`` at column ``c % 16``.
  Row 0 starts at screen y = 32 (below the status bar); rows grow downwards.
- Object y bytes (Mario 0xCE, enemies 0xCF..) are the top of the object's metasprite in
  screen pixels, with a "viewport" high byte (0xB5, 0xB6..) that is 1 on screen, 0 above it
  and 2+ below it. Mario's metasprite is 32 px tall whatever his size (small Mario uses the
  lower half), so his lower body is centred at y + 24; an enemy body is centred at y + 16.
- ``tile_grid`` columns start at the screen's left edge (0x71A page, 0x71C pixel): column 0
  is the tile column holding the leftmost visible pixel, so the grid is what is on screen
  (the 17th, partly visible column on the right is left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RAM_SIZE = 0x800
ENEMY_SLOTS = 5
GRID_ROWS = 13
GRID_COLS = 16
TILE_PX = 16

# --- RAM addresses (Data Crystal "Super Mario Bros./RAM map" names in comments) ---------
A_B_BUTTONS = 0x000A  # A and B held this frame, A = bit 7
PLAYER_STATE = 0x000E  # GameEngineSubroutine: 0x08 normal, 0x0A shrinking, 0x0B dying ...
ENEMY_DRAWN = 0x000F  # 5 bytes, nonzero = slot in use
ENEMY_KIND = 0x0016  # 5 bytes, enemy identifier
FLOAT_STATE = 0x001D  # 0 on the ground, 1 jumping, 2 falling, 3 flagpole
ENEMY_STATE = 0x001E  # 5 bytes, see `count_kills`
FIREBALL_STATE = 0x0024  # 2 bytes, bit 7 = exploding
PLAYER_X_SPEED = 0x0057  # signed, + = right
PLAYER_PAGE = 0x006D
ENEMY_PAGE = 0x006E  # 5 bytes
PLAYER_X = 0x0086
ENEMY_X = 0x0087  # 5 bytes
PLAYER_Y_SPEED = 0x009F  # signed, + = down
PLAYER_Y_VIEWPORT = 0x00B5
ENEMY_Y_VIEWPORT = 0x00B6  # 5 bytes
PLAYER_Y = 0x00CE
ENEMY_Y = 0x00CF  # 5 bytes
PLAYER_Y_PIXEL = 0x03B8  # the copy gym-super-mario-bros reports as y_pixel
BLOCK_BUFFER = 0x0500
BLOCK_PAGE_BYTES = 0xD0
SWIMMING_FLAG = 0x0704
CLOUD_AREA = 0x0743  # CloudTypeOverride: nonzero in a coin-heaven (cloud) area
ENTRANCE_MODE = 0x0752  # AltEntranceControl: 3 while leaving a cloud area by falling
SCREEN_LEFT_PAGE = 0x071A
AREA_TYPE = 0x074E  # 0 water, 1 ground, 2 underground, 3 castle
AREA_INDEX = 0x074F  # which area of that type: with AREA_TYPE, the area Mario is in
SCREEN_LEFT_X = 0x071C
POWER = 0x0756  # 0 small, 1 big, 2+ fire
LIVES = 0x075A
STAGE = 0x075C
WORLD = 0x075F
STAR_TIMER = 0x079F
TIME_DIGITS = 0x07F8  # 3 bytes, one decimal digit each
TIMER_EXPIRED = 0x0759  # GameTimerExpiredFlag: 1 once the clock has run out (the clock
# shows 000 for about 20 frames before that, when a hit is still a hit)
SCORE_DIGITS = 0x07DE  # 6 bytes, one decimal digit each
COIN_DIGITS = 0x07ED  # 2 bytes, one decimal digit each

A_BUTTON = 0x80
PLAYER_DYING = 0x0B
PLAYER_DEAD = 0x06
LEAVING_CLOUD = 3  # ENTRANCE_MODE's value after a fall out of a cloud area
FIREBALL_EXPLODING = 0x80
# Enemy state values the game writes when it defeats an enemy (SMB disassembly):
STOMPED_STATE = 0x04  # HandleStompedShellE: goomba flattened, koopa knocked into its shell
DEFEATED_BIT = 0x20  # d5: falling off screen (fire, shell, star, block bump, some stomps)
STOMP_BOUNCE_STATE = 0x20  # EnemyStompedPts writes exactly d5 for stompable non-koopas
# Identifiers 0x24-0x2C are platforms and 0x2E+ are items and markers; 0x2D is Bowser.
FIRST_PLATFORM_KIND = 0x24
BOWSER_KIND = 0x2D

GRID_TOP_Y = 32  # screen y of block buffer row 0
OBJECT_HALF_WIDTH = 8
MARIO_LOWER_BODY_DY = 24
ENEMY_BODY_DY = 16
POWER_LEVELS = 3

_MARIO_ADDRESSES = np.array(
    [
        PLAYER_PAGE,
        PLAYER_X,
        PLAYER_Y_PIXEL,
        PLAYER_Y_VIEWPORT,
        SCREEN_LEFT_X,
        PLAYER_X_SPEED,
        PLAYER_Y_SPEED,
        FLOAT_STATE,
        POWER,
        LIVES,
        TIME_DIGITS,
        TIME_DIGITS + 1,
        TIME_DIGITS + 2,
        WORLD,
        STAGE,
        PLAYER_STATE,
    ],
    dtype=np.intp,
)
# Rows: drawn, kind, state, page, x, y viewport, y; columns: the 5 slots.
_ENEMY_TABLE = np.array(
    [ENEMY_DRAWN, ENEMY_KIND, ENEMY_STATE, ENEMY_PAGE, ENEMY_X, ENEMY_Y_VIEWPORT, ENEMY_Y],
    dtype=np.intp,
)[:, None] + np.arange(ENEMY_SLOTS, dtype=np.intp)


def _check_ram(ram: np.ndarray) -> None:
    if not (isinstance(ram, np.ndarray) and ram.shape == (RAM_SIZE,) and ram.dtype == np.uint8):
        got = (
            f"{type(ram).__name__} shape={ram.shape} dtype={ram.dtype}"
            if isinstance(ram, np.ndarray)
            else type(ram).__name__
        )
        raise ValueError(
            f"expected NES RAM as a uint8 numpy array of shape ({RAM_SIZE},), got {got}; "
            "pass env.unwrapped.ram"
        )


def _signed_byte(value: int) -> int:
    return value - 256 if value >= 128 else value


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


# --- Mario ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarioRamState:
    """Mario and the game counters, in the conventions of gym-super-mario-bros' info."""

    x: int
    """Level x in pixels: page 0x6D * 256 + 0x86 (info["x_pos"])."""
    y: int
    """255 - screen y pixel (0x3B8), so up is positive; above the screen (0xB5 == 0) it
    keeps growing past 255 (info["y_pos"])."""
    screen_x: int
    """Mario's x in pixels from the screen's left edge (info["left_x_pos"])."""
    velocity_sign: int
    """-1 left, 0 still, +1 right: sign of the signed speed byte 0x57."""
    vertical_velocity_sign: int
    """-1 falling, 0 still, +1 rising: minus the sign of 0x9F, so it agrees with `y`."""
    on_ground: bool
    """Float state 0x1D == 0."""
    power: int
    """0 small, 1 big, 2 fire (0x756 capped at 2, info["powerup_level"])."""
    lives: int
    """Raw 0x75A (info["life"]); 0xFF after the last life is lost."""
    time: int
    """Clock, three decimal digits at 0x7F8 (info["time"])."""
    world: int
    """1-based world (0x75F + 1)."""
    stage: int
    """1-based stage (0x75C + 1)."""
    player_state: int
    """Game engine routine 0x0E: 0x08 normal control, 0x0B dying, 0x06 dead, ..."""


def read_mario(ram: np.ndarray) -> MarioRamState:
    """Read Mario's position, motion, power and the game counters from RAM."""
    _check_ram(ram)
    # One gather and one tolist() give Python ints, cheaper than 16 scalar reads and free of
    # uint8 overflow in the arithmetic below.
    (
        page,
        x,
        y_pixel,
        y_viewport,
        screen_left_x,
        x_speed,
        y_speed,
        float_state,
        power,
        lives,
        hundreds,
        tens,
        ones,
        world,
        stage,
        player_state,
    ) = ram[_MARIO_ADDRESSES].tolist()
    y = package_y(y_viewport, y_pixel)
    return MarioRamState(
        x=page * 256 + x,
        y=y,
        screen_x=(x - screen_left_x) % 256,
        velocity_sign=_sign(_signed_byte(x_speed)),
        vertical_velocity_sign=-_sign(_signed_byte(y_speed)),
        on_ground=float_state == 0,
        power=min(power, POWER_LEVELS - 1),
        lives=lives,
        time=100 * hundreds + 10 * tens + ones,
        world=world + 1,
        stage=stage + 1,
        player_state=player_state,
    )


def below_screen(ram: np.ndarray) -> bool:
    """Mario is below the bottom of the screen (Player_Y_HighPos > 1): in a pit or lava,
    or, in a cloud area, on his way back down to the level."""
    return int(ram[PLAYER_Y_VIEWPORT]) > 1


def package_y(y_viewport: int, y_pixel: int) -> int:
    """Mario's height as gym-super-mario-bros's ``info["y_pos"]``: up is positive.

    Above the viewport (0xB5 < 1) the pixel row wraps, so the package counts past 255.
    """
    return 255 + (255 - y_pixel) if y_viewport < 1 else 255 - y_pixel


def _screen_y(viewport: int, y: int) -> int:
    """Pixels from the top of the screen, negative above it (viewport byte 0)."""
    return (viewport - 1) * 256 + y


def _mario_level_tile(ram: np.ndarray) -> tuple[int, int]:
    """(row, level column) of the tile at the centre of Mario's lower body."""
    page, x, viewport, y = ram[[PLAYER_PAGE, PLAYER_X, PLAYER_Y_VIEWPORT, PLAYER_Y]].tolist()
    row = (_screen_y(viewport, y) + MARIO_LOWER_BODY_DY - GRID_TOP_Y) // TILE_PX
    return row, (page * 256 + x + OBJECT_HALF_WIDTH) // TILE_PX


# --- Tiles ------------------------------------------------------------------------------


def screen_left_x(ram: np.ndarray) -> int:
    """Level x in pixels of the screen's left edge (page 0x71A * 256 + 0x71C).

    The page is read signed: a castle loop moves it back 4 pages, from 3 to 0xFF in 4-4
    (docs/level-mechanics.md, section 5), which is page -1, not 255.
    """
    _check_ram(ram)
    page, x = ram[[SCREEN_LEFT_PAGE, SCREEN_LEFT_X]].tolist()
    return (page - 256 if page >= 0x80 else page) * 256 + x


def _block_column_address(level_col: int) -> int:
    """Block buffer address of row 0 of a level tile column."""
    return BLOCK_BUFFER + (level_col // GRID_COLS) % 2 * BLOCK_PAGE_BYTES + level_col % GRID_COLS


# The buffer repeats every 32 columns, so the grid's (13, 16) addresses depend only on the
# screen's left tile column mod 32: precompute all 32 address tables once.
_BUFFER_COLS = 2 * GRID_COLS
_GRID_ADDRESSES = np.array(
    [
        [
            [_block_column_address(left_col + col) + row * GRID_COLS for col in range(GRID_COLS)]
            for row in range(GRID_ROWS)
        ]
        for left_col in range(_BUFFER_COLS)
    ],
    dtype=np.intp,
)


def tile_grid(ram: np.ndarray) -> np.ndarray:
    """The visible screen as a (13, 16) uint8 grid: 1 where the tile byte is nonzero.

    Row 0 is the top row below the status bar, column 0 the leftmost visible tile column
    (see the module docstring). Nonzero means "some foreground tile": ground, bricks,
    pipes, blocks, and also coins and the flagpole.
    """
    _check_ram(ram)
    left_col = screen_left_x(ram) // TILE_PX
    return (ram[_GRID_ADDRESSES[left_col % _BUFFER_COLS]] != 0).astype(np.uint8)


def mario_tile(ram: np.ndarray) -> tuple[int, int]:
    """Mario's (row, col) in `tile_grid`: the tile at the centre of his lower body.

    Big Mario also fills the tile above. The row is negative above the screen and 13 or
    more below it (falling into a pit).
    """
    _check_ram(ram)
    row, level_col = _mario_level_tile(ram)
    return row, level_col - screen_left_x(ram) // TILE_PX


def obstacles_ahead(ram: np.ndarray) -> tuple[bool, bool, bool, bool]:
    """Solid tiles in the column right of Mario: at his lower-body row, then 1, 2, 3 above.

    Rows outside the 13-row buffer count as empty.
    """
    _check_ram(ram)
    row, level_col = _mario_level_tile(ram)
    column = _block_column_address(level_col + 1)

    def solid(row: int) -> bool:
        return 0 <= row < GRID_ROWS and bool(ram[column + row * GRID_COLS])

    return (solid(row), solid(row - 1), solid(row - 2), solid(row - 3))


# --- Enemies ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class EnemySlots:
    """The game's 5 enemy slots as arrays of shape (5,), slot order kept."""

    drawn: np.ndarray
    """bool: slot in use (0x0F..0x13 nonzero); the other fields are stale where False."""
    kind: np.ndarray
    """uint8 enemy identifier (0x16..0x1A): 0x06 goomba, 0x00 green koopa, ..."""
    state: np.ndarray
    """uint8 enemy state (0x1E..0x22), see `count_kills`."""
    x: np.ndarray
    """int64 level x in pixels of the left edge (page 0x6E.. * 256 + 0x87..)."""
    y: np.ndarray
    """int64 255 - screen y of the top (0xCF.., high byte 0xB6..): Mario's `y` convention."""


def _slots(ram: np.ndarray, address: int) -> np.ndarray:
    """View of the 5 per-enemy bytes starting at `address`."""
    return ram[address : address + ENEMY_SLOTS]


def enemies(ram: np.ndarray) -> EnemySlots:
    """Read the 5 enemy slots."""
    _check_ram(ram)
    screen_y = (_slots(ram, ENEMY_Y_VIEWPORT).astype(np.int64) - 1) * 256 + _slots(ram, ENEMY_Y)
    return EnemySlots(
        drawn=_slots(ram, ENEMY_DRAWN) != 0,
        kind=_slots(ram, ENEMY_KIND).copy(),
        state=_slots(ram, ENEMY_STATE).copy(),
        x=_slots(ram, ENEMY_PAGE).astype(np.int64) * 256 + _slots(ram, ENEMY_X),
        y=255 - screen_y,
    )


def enemy_offsets(ram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) in pixels from Mario to each enemy slot, centre to centre, up positive.

    Mario's centre is his lower body (the part small Mario has), so an enemy walking on the
    same floor has dy == 0. Check `enemies(ram).drawn` before trusting a slot.
    """
    slots = enemies(ram)
    page, x, viewport, y = ram[[PLAYER_PAGE, PLAYER_X, PLAYER_Y_VIEWPORT, PLAYER_Y]].tolist()
    mario_centre_y = 255 - _screen_y(viewport, y) - MARIO_LOWER_BODY_DY
    return slots.x - (page * 256 + x), slots.y - ENEMY_BODY_DY - mario_centre_y


def _is_defeated(state: int) -> bool:
    return state & DEFEATED_BIT != 0 or state == STOMPED_STATE


def _is_threat(drawn: int, kind: int, state: int) -> bool:
    """A slot holding a live enemy (not a platform, item, flag or defeated enemy)."""
    enemy_kind = kind < FIRST_PLATFORM_KIND or kind == BOWSER_KIND
    return bool(drawn) and enemy_kind and not _is_defeated(state)


@dataclass(frozen=True, slots=True)
class KillCount:
    """Enemies defeated between two RAM snapshots, by cause."""

    stomp: int
    fire: int
    other: int
    """Kicked shell, star, bumped block, or an ambiguous case."""


NO_KILLS = KillCount(stomp=0, fire=0, other=0)


def _previous_enemy_states(previous: np.ndarray | Sequence[int]) -> list[int]:
    if len(previous) == RAM_SIZE:
        return [int(state) for state in _slots(np.asarray(previous), ENEMY_STATE)]
    if len(previous) == ENEMY_SLOTS:
        return [int(state) for state in previous]
    raise ValueError(
        f"expected the previous RAM ({RAM_SIZE} bytes) or its {ENEMY_SLOTS} enemy state bytes "
        f"(DecisionMemory.enemy_states), got {len(previous)} values"
    )


def count_kills(previous: np.ndarray | Sequence[int], ram: np.ndarray) -> KillCount:
    """Count enemies the game defeated since `previous`, split into stomp / fire / other.

    `previous` is a copy of the earlier RAM or just its enemy state bytes (0x1E..0x22).
    Rule, from what the game writes into the enemy state byte (SMB disassembly):

    - a slot is *defeated* when its state has bit 5 set (falling off screen) or equals 0x04
      (flattened goomba / koopa in its shell); a kill is a drawn slot that was not defeated
      in `previous` and is now;
    - state 0x04 is only written by a stomp -> stomp;
    - otherwise, if a fireball is exploding (bit 7 of 0x24 or 0x25) -> fire;
    - otherwise state exactly 0x20 with Mario rising (the stomp bounce) and no star -> stomp
      (cheep-cheeps, bullet bills, hammer bros, lakitus, bloopers);
    - anything else (kicked shell, star, block bumped from below) -> other.

    A fireball exploding on a wall at the same moment as one of those 0x20 stomps makes the
    stomp count as fire. Stomping a paratroopa only takes its wings and is not a kill.
    """
    _check_ram(ram)
    before = _previous_enemy_states(previous)
    # Plain Python on 5 bytes: cheaper than NumPy's per-call overhead, and this runs every step.
    killed = [
        state
        for drawn, was, state in zip(
            _slots(ram, ENEMY_DRAWN).tolist(),
            before,
            _slots(ram, ENEMY_STATE).tolist(),
            strict=True,
        )
        if drawn and not _is_defeated(was) and _is_defeated(state)
    ]
    if not killed:
        return NO_KILLS
    fireball_exploding = any(ram[FIREBALL_STATE : FIREBALL_STATE + 2] & FIREBALL_EXPLODING)
    bounced = _signed_byte(int(ram[PLAYER_Y_SPEED])) < 0 and int(ram[STAR_TIMER]) == 0
    bounce_stomp = bounced and not fireball_exploding
    stomp = sum(
        state == STOMPED_STATE or (state == STOMP_BOUNCE_STATE and bounce_stomp) for state in killed
    )
    fire = len(killed) - stomp if fireball_exploding else 0
    return KillCount(stomp=stomp, fire=fire, other=len(killed) - stomp - fire)


# --- CS229 symbolic state ---------------------------------------------------------------
#
# The discrete state of the Stanford CS229 report on tabular Q-learning for Mario: Mario's
# mode, direction of motion, stuck, on ground, can jump, collided, enemies around him in 8
# directions at 3 ranges, killed by stomp / by fire this step, and 4 obstacle tiles ahead.

SYMBOLIC_ENCODING_VERSION = 1
"""Bump when the meaning or bit layout of `pack_symbolic` codes changes (Q-tables keyed by
codes are only valid for the version that wrote them)."""

DIRECTIONS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
"""Order of `SymbolicState.enemy_ranges`: clockwise from up (north)."""
RANGE_NONE, RANGE_NEAR, RANGE_MID, RANGE_FAR = 0, 1, 2, 3
RANGE_RADII = (1, 3, 5)
"""Chebyshev tile distance of the near (3x3), mid (7x7) and far (11x11) windows."""
MOTION_DIRECTIONS = 9
STUCK_AFTER_STEPS = 8
"""Default number of decisions in a row without x changing before Mario counts as stuck."""

# Compass index by [vertical sign + 1][horizontal sign + 1], vertical + = down (grid rows).
# The centre cell is never used: `enemy_ranges` breaks a same-tile tie left or right.
_COMPASS = ((7, 0, 1), (6, 2, 2), (5, 4, 3))

# pack_symbolic bit layout, least significant first (32 bits in all).
_MODE_SHIFT, _MODE_BITS = 0, 2
_DIRECTION_SHIFT, _DIRECTION_BITS = 2, 4
_STUCK_BIT = 6
_ON_GROUND_BIT = 7
_CAN_JUMP_BIT = 8
_COLLIDED_BIT = 9
_STOMP_KILL_BIT = 10
_FIRE_KILL_BIT = 11
_OBSTACLES_SHIFT = 12
_ENEMY_RANGES_SHIFT = 16
_RANGE_BITS = 2
SYMBOLIC_CODE_BITS = _ENEMY_RANGES_SHIFT + _RANGE_BITS * len(DIRECTIONS)
RINGS_CODE_BITS = _ENEMY_RANGES_SHIFT + len(DIRECTIONS) * len(RANGE_RADII)
"""Bits of `pack_symbolic_rings` codes: the report's 24 enemy bits in place of 16."""


@dataclass(frozen=True, slots=True)
class SymbolicState:
    """The CS229 symbolic state; `pack_symbolic` turns it into one int for a Q-table."""

    mode: int
    """0 small, 1 big, 2 fire."""
    direction: int
    """Direction of motion 0..8 = 3 * (velocity_sign + 1) + (vertical_velocity_sign + 1):
    0 left+falling, 1 left, 2 left+rising, 3 falling, 4 still, 5 rising, 6 right+falling,
    7 right, 8 right+rising."""
    stuck: bool
    """x has not changed for `stuck_after` decisions in a row."""
    on_ground: bool
    can_jump: bool
    """On the ground (or swimming) and A was not held on the last frame: the game only
    starts a jump on a fresh press of A."""
    collided: bool
    """Hurt since the last decision: power dropped, or Mario started dying (0x0E -> 0x0B).
    The injury timer 0x79E is not used: the game sets it only together with the power drop,
    then it counts down for about 200 frames (the blinking), so it is no one-step event."""
    enemy_ranges: tuple[int, ...]
    """Per direction (order of `DIRECTIONS`), the nearest window holding a live enemy:
    0 none, 1 near (3x3 tiles), 2 mid (7x7), 3 far (11x11). Windows are one tile taller
    when Mario is big (both tiles of his body count as his row)."""
    stomp_kill: bool
    fire_kill: bool
    obstacles: tuple[bool, bool, bool, bool]
    """Solid tiles right of Mario at his lower-body row and 1, 2, 3 rows above."""


@dataclass(frozen=True, slots=True)
class DecisionMemory:
    """What a tabular agent keeps from one decision to the next (plain ints, hashable)."""

    x: int
    power: int
    player_state: int
    enemy_states: tuple[int, ...]
    """The 5 enemy state bytes 0x1E..0x22, for `count_kills`."""
    steps_still: int
    """Decisions in a row, this one included, at which x equalled the previous x."""


def _steps_still(x: int, previous: DecisionMemory | None) -> int:
    if previous is None or x != previous.x:
        return 0
    return previous.steps_still + 1


def remember(ram: np.ndarray, previous: DecisionMemory | None) -> DecisionMemory:
    """The memory to pass to the next `symbolic_state` call (None at an episode start)."""
    mario = read_mario(ram)
    return DecisionMemory(
        x=mario.x,
        power=mario.power,
        player_state=mario.player_state,
        enemy_states=tuple(_slots(ram, ENEMY_STATE).tolist()),
        steps_still=_steps_still(mario.x, previous),
    )


def motion_direction(velocity_sign: int, vertical_velocity_sign: int) -> int:
    """Index 0..8 of a (horizontal, vertical) pair of signs, see `SymbolicState.direction`."""
    return 3 * (velocity_sign + 1) + (vertical_velocity_sign + 1)


def _window(distance: int) -> int:
    """Smallest window (RANGE_NEAR..RANGE_FAR) reaching `distance` tiles, else RANGE_NONE."""
    for window, radius in enumerate(RANGE_RADII, start=RANGE_NEAR):
        if distance <= radius:
            return window
    return RANGE_NONE


def _enemy_windows(ram: np.ndarray) -> list[tuple[int, int]]:
    """(direction, window) of each live enemy within the far window, see `enemy_ranges`."""
    _check_ram(ram)
    mario_row, mario_col = _mario_level_tile(ram)
    mario_x = int(ram[PLAYER_PAGE]) * 256 + int(ram[PLAYER_X])
    top_row = mario_row - (1 if ram[POWER] > 0 else 0)
    found = []
    # One gather, then plain Python: with 5 slots NumPy's per-call overhead costs more than
    # the loop (measured about 50 us per call vectorised against 6 us).
    for drawn, kind, state, page, x, viewport, y in zip(*ram[_ENEMY_TABLE].tolist(), strict=True):
        if not _is_threat(drawn, kind, state):
            continue
        level_x = page * 256 + x
        row = (_screen_y(viewport, y) + ENEMY_BODY_DY - GRID_TOP_Y) // TILE_PX
        d_col = (level_x + OBJECT_HALF_WIDTH) // TILE_PX - mario_col
        d_row = row - mario_row if row > mario_row else min(row - top_row, 0)
        window = _window(max(abs(d_col), abs(d_row)))
        if window == RANGE_NONE:
            continue
        horizontal, vertical = _sign(d_col), _sign(d_row)
        if horizontal == vertical == 0:
            horizontal = -1 if level_x < mario_x else 1
        found.append((_COMPASS[vertical + 1][horizontal + 1], window))
    return found


def enemy_ranges(ram: np.ndarray) -> np.ndarray:
    """Nearest range (0 none, 1 near, 2 mid, 3 far) of a live enemy in each of 8 directions.

    Distances are in tiles between Mario's tile and the tile at the centre of the enemy's
    body; big Mario spans two rows, and an enemy level with either counts as level. An
    enemy in Mario's own tile column is N or S; one in his own tile is E or W by pixel x
    (E on a tie). Returns uint8 of shape (8,) in `DIRECTIONS` order.

    With the windows nested (an enemy in the near window is also in the mid and far ones),
    the nearest range per direction says exactly which of the 24 direction x window bits
    are set. Read as rings (mid = the 7x7 window less the 3x3 one), it drops a farther
    ring whenever a nearer one also holds an enemy: `enemy_rings` keeps those bits, and
    `benchmarks/cs229_state_bits.py` measures how often they differ.
    """
    nearest = [RANGE_NONE] * len(DIRECTIONS)
    for direction, window in _enemy_windows(ram):
        if nearest[direction] == RANGE_NONE or window < nearest[direction]:
            nearest[direction] = window
    return np.array(nearest, dtype=np.uint8)


def enemy_rings(ram: np.ndarray) -> np.ndarray:
    """Whether each ring (near 3x3, mid 7x7 less 3x3, far 11x11 less 7x7) in each of 8
    directions holds a live enemy: bool of shape (8, 3), rows in `DIRECTIONS` order."""
    rings = np.zeros((len(DIRECTIONS), len(RANGE_RADII)), dtype=bool)
    for direction, window in _enemy_windows(ram):
        rings[direction, window - RANGE_NEAR] = True
    return rings


def symbolic_state(
    ram: np.ndarray,
    previous: DecisionMemory | None,
    *,
    stuck_after: int = STUCK_AFTER_STEPS,
) -> SymbolicState:
    """The CS229 symbolic state now, given the memory kept from the previous decision.

    Call once per decision, then keep ``remember(ram, previous)`` for the next one:

        memory = None                      # at reset
        state = symbolic_state(ram, memory)
        memory = remember(ram, memory)

    With `previous` None (episode start) nothing was killed or hit and Mario is not stuck.
    """
    if stuck_after < 1:
        raise ValueError(f"expected stuck_after >= 1 decisions, got {stuck_after}")
    mario = read_mario(ram)
    if previous is None:
        kills = NO_KILLS
        collided = False
    else:
        kills = count_kills(previous.enemy_states, ram)
        started_dying = mario.player_state == PLAYER_DYING and previous.player_state != PLAYER_DYING
        collided = mario.power < previous.power or started_dying
    a_held = bool(ram[A_B_BUTTONS] & A_BUTTON)
    return SymbolicState(
        mode=mario.power,
        direction=motion_direction(mario.velocity_sign, mario.vertical_velocity_sign),
        stuck=_steps_still(mario.x, previous) >= stuck_after,
        on_ground=mario.on_ground,
        can_jump=(mario.on_ground or bool(ram[SWIMMING_FLAG])) and not a_held,
        collided=collided,
        enemy_ranges=tuple(enemy_ranges(ram).tolist()),
        stomp_kill=kills.stomp > 0,
        fire_kill=kills.fire > 0,
        obstacles=obstacles_ahead(ram),
    )


def _check_field(name: str, value: int, limit: int) -> None:
    if not 0 <= value < limit:
        raise ValueError(f"expected SymbolicState.{name} in [0, {limit}), got {value}")


def pack_symbolic(state: SymbolicState) -> int:
    """One int in [0, 2**32) for a Q-table key; `unpack_symbolic` inverts it exactly.

    Bits, least significant first: 0-1 mode, 2-5 direction, 6 stuck, 7 on_ground,
    8 can_jump, 9 collided, 10 stomp_kill, 11 fire_kill, 12-15 obstacles (bit 12 = lower
    body row), 16-31 enemy_ranges (2 bits per direction, N at bits 16-17 ... NW at 30-31).
    """
    _check_field("mode", state.mode, POWER_LEVELS)
    _check_field("direction", state.direction, MOTION_DIRECTIONS)
    if len(state.enemy_ranges) != len(DIRECTIONS) or len(state.obstacles) != 4:
        raise ValueError(
            f"expected 8 enemy_ranges and 4 obstacles, got {len(state.enemy_ranges)} "
            f"and {len(state.obstacles)}"
        )
    flags = (
        (state.stuck, _STUCK_BIT),
        (state.on_ground, _ON_GROUND_BIT),
        (state.can_jump, _CAN_JUMP_BIT),
        (state.collided, _COLLIDED_BIT),
        (state.stomp_kill, _STOMP_KILL_BIT),
        (state.fire_kill, _FIRE_KILL_BIT),
        *((blocked, _OBSTACLES_SHIFT + index) for index, blocked in enumerate(state.obstacles)),
    )
    # int() so NumPy integers and bools pack the same as Python ones.
    code = int(state.mode) << _MODE_SHIFT | int(state.direction) << _DIRECTION_SHIFT
    for flag, position in flags:
        code |= int(bool(flag)) << position
    for index, window in enumerate(state.enemy_ranges):
        _check_field(f"enemy_ranges[{index}]", window, 1 << _RANGE_BITS)
        code |= int(window) << (_ENEMY_RANGES_SHIFT + _RANGE_BITS * index)
    return code


def _bit(code: int, position: int) -> bool:
    return bool(code >> position & 1)


def pack_symbolic_rings(state: SymbolicState, rings: np.ndarray) -> int:
    """`pack_symbolic` with the report's 24 enemy bits read as rings (`enemy_rings`) in
    place of the 16 bits of nearest ranges: one int in [0, 2**40).

    Bits 0-15 as `pack_symbolic`; bit 16 + 3 * d + w says ring w (0 near, 1 mid, 2 far)
    of direction d (order of `DIRECTIONS`) holds an enemy.
    """
    rings = np.asarray(rings, bool)
    if rings.shape != (len(DIRECTIONS), len(RANGE_RADII)):
        raise ValueError(f"rings: expected shape (8, 3) as enemy_rings returns, got {rings.shape}")
    code = pack_symbolic(state) & ((1 << _ENEMY_RANGES_SHIFT) - 1)
    for index, occupied in enumerate(rings.ravel().tolist()):
        code |= int(occupied) << (_ENEMY_RANGES_SHIFT + index)
    return code


def unpack_symbolic(code: int) -> SymbolicState:
    """Inverse of `pack_symbolic`; rejects codes it could not have produced."""
    if not 0 <= code < 1 << SYMBOLIC_CODE_BITS:
        raise ValueError(f"expected a code in [0, 2**{SYMBOLIC_CODE_BITS}), got {code}")
    mode = code >> _MODE_SHIFT & ((1 << _MODE_BITS) - 1)
    direction = code >> _DIRECTION_SHIFT & ((1 << _DIRECTION_BITS) - 1)
    _check_field("mode", mode, POWER_LEVELS)
    _check_field("direction", direction, MOTION_DIRECTIONS)
    ranges = [
        code >> (_ENEMY_RANGES_SHIFT + _RANGE_BITS * index) & ((1 << _RANGE_BITS) - 1)
        for index in range(len(DIRECTIONS))
    ]
    return SymbolicState(
        mode=mode,
        direction=direction,
        stuck=_bit(code, _STUCK_BIT),
        on_ground=_bit(code, _ON_GROUND_BIT),
        can_jump=_bit(code, _CAN_JUMP_BIT),
        collided=_bit(code, _COLLIDED_BIT),
        enemy_ranges=tuple(ranges),
        stomp_kill=_bit(code, _STOMP_KILL_BIT),
        fire_kill=_bit(code, _FIRE_KILL_BIT),
        obstacles=(
            _bit(code, _OBSTACLES_SHIFT),
            _bit(code, _OBSTACLES_SHIFT + 1),
            _bit(code, _OBSTACLES_SHIFT + 2),
            _bit(code, _OBSTACLES_SHIFT + 3),
        ),
    )
