import pytest

from mario_rl.env.actions import (
    ACTION_SETS,
    UnknownActionSetError,
    action_bytes,
    action_set,
    buttons_to_byte,
    extends,
)
from mario_rl.env.levels import Level, UnknownLevelError, all_levels, parse_level


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1-1", Level(1, 1)),
        ("8-4", Level(8, 4)),
        ("SuperMarioBros-4-2-v0", Level(4, 2)),
        (" 3-3 ", Level(3, 3)),
        ("full", Level()),
        ("SuperMarioBros-v0", Level()),
    ],
)
def test_parse_level_accepts_short_names_gym_ids_and_the_full_game(text, expected):
    assert parse_level(text) == expected


@pytest.mark.parametrize("text", ["9-1", "1-5", "0-1", "1_1", "", "SuperMarioBros-1-1-v3", "11"])
def test_parse_level_rejects_with_a_message_naming_the_valid_form(text):
    with pytest.raises(UnknownLevelError, match=r"expected W-S with world 1-8 and stage 1-4"):
        parse_level(text)


def test_level_names_round_trip_and_there_are_32():
    levels = all_levels()
    assert len(levels) == 32
    assert [parse_level(level.name) for level in levels] == levels
    assert [parse_level(level.gym_id) for level in levels] == levels
    assert Level(2, 3).target == (2, 3)
    assert Level().target is None and Level().name == "full"


def test_action_set_sizes():
    sizes = {name: len(combos) for name, combos in ACTION_SETS.items()}
    assert sizes == {
        "right_only": 5,
        "simple": 7,
        "complex": 12,
        "lnr": 3,
        "cs229": 12,
        "curiosity": 14,
    }


def test_simple_and_complex_extend_right_only_and_nothing_extends_itself_or_reorders():
    assert extends("simple", "right_only") and extends("complex", "right_only")
    assert extends("complex", "simple")
    assert not extends("right_only", "simple")  # fewer
    assert not extends("right_only", "right_only")
    assert not extends("curiosity", "right_only")  # more, in another order
    assert not extends("lnr", "right_only")
    with pytest.raises(UnknownActionSetError):
        extends("x", "right_only")


def test_cs229_is_left_right_stay_times_jump_times_speed():
    combos = {frozenset(c) - {"NOOP"} for c in ACTION_SETS["cs229"]}
    expected = {
        frozenset(move + jump + speed)
        for move in (("left",), ("right",), ())
        for jump in (("A",), ())
        for speed in (("B",), ())
    }
    assert combos == expected


def test_curiosity_moves_never_press_start_or_left_with_right():
    combos = ACTION_SETS["curiosity"]
    assert len(set(combos)) == 14
    for combo in combos:
        assert "start" not in combo and "select" not in combo
        assert not ({"left", "right"} <= set(combo))
    assert ("down",) in combos and ("up",) in combos


def test_action_bytes_match_the_nes_button_bits():
    assert buttons_to_byte(["NOOP"]) == 0
    assert buttons_to_byte(["right", "A", "B"]) == 0b10000011
    assert action_bytes("lnr") == [0b01000000, 0, 0b10000000]
    assert len(set(action_bytes("complex"))) == 12


def test_unknown_action_set_and_button_errors():
    with pytest.raises(UnknownActionSetError, match="expected one of right_only"):
        action_set("everything")
    with pytest.raises(ValueError, match="unknown button 'Z'"):
        buttons_to_byte(["Z"])
