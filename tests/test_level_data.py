"""Where each level ends, from the game's level data in the packaged ROM."""

from __future__ import annotations

import pytest

from mario_rl.env.level_data import LevelData, LevelEnd, level_end, rom_bytes
from mario_rl.env.levels import all_levels

PIPE_EXITS = {"1-2", "2-2", "4-2", "7-2"}


def test_1_1_ends_at_the_flag_where_a_human_finish_grabbed_it():
    # tests/data/1-1-finish.jsonl: Mario's x stopped at 3161 on the pole.
    assert level_end("1-1") == LevelEnd("flag", 198)
    assert level_end("1-1").x == 3161


def test_every_level_ends_at_a_flag_or_in_a_castle_at_the_axe():
    for level in all_levels():
        end = level_end(level.name)
        assert end is not None, level.name
        assert end.kind == ("axe" if level.stage == 4 else "flag"), level.name
        # Levels are 8 to 24 pages of 16 columns.
        assert 8 * 16 <= end.column <= 24 * 16, level.name
        assert (end.exit_area is not None) == (level.name in PIPE_EXITS), level.name


def test_the_levels_left_by_a_pipe_end_at_the_flag_of_1_1s_area():
    # Their pipes lead into 1-1's area at page 11 (the campaign's 1-2 clears end at 3161).
    for level in PIPE_EXITS:
        assert level_end(level) == LevelEnd("flag", 198, exit_area=0x25)


def test_levels_that_share_their_area_share_their_end():
    # The game reuses areas: 1-3 and 5-3, 2-3 and 7-3, the castles of 1-4 and 6-4.
    assert level_end("1-3") == level_end("5-3")
    assert level_end("2-3") == level_end("7-3")
    assert level_end("1-4") == level_end("6-4") == LevelEnd("axe", 141)
    assert level_end("8-1").x > max(level_end(f"{w}-1").x for w in range(1, 8))


def test_the_full_game_has_no_single_end():
    assert level_end("full") is None


def test_another_rom_is_refused():
    rom = bytearray(rom_bytes())
    start = rom.find(bytes.fromhex("2529c02660"))
    rom[start] ^= 0xFF
    with pytest.raises(ValueError, match="not Super Mario Bros"):
        LevelData(bytes(rom))


def test_a_death_map_marks_the_flag_or_the_axe():
    from mario_rl.record import end_marker

    assert end_marker("1-1") == (3161, "the flag (x 3161)")
    assert end_marker("4-4") == (2768, "the axe (x 2768)")
    assert end_marker("1-2") == (3161, "the flag (x 3161, in the exit area)")
    assert end_marker("1-2", flag_x=3000) == (3000, "the flag (x 3000)")
