"""The race's summary over seeds: median and spread, seeds that did not clear counted."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "race_1_1.py"
spec = importlib.util.spec_from_file_location("race_1_1", SCRIPT)
race_1_1 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(race_1_1)


def races(*clears: tuple[int, float] | None) -> list[dict]:
    return [
        {"seed": seed, "first_clear": None if c is None else {"frames": c[0], "wall_minutes": c[1]}}
        for seed, c in enumerate(clears)
    ]


def test_median_and_range_of_three_cleared_seeds():
    summary = race_1_1.seeds_summary(races((3e6, 60.0), (1e6, 20.0), (2e6, 45.0)), 4e6)
    assert summary["cleared_seeds"] == 3
    assert (summary["median_frames"], summary["median_wall_minutes"]) == (2e6, 45.0)
    assert summary["frames_range"] == [1e6, 3e6]


def test_a_seed_that_did_not_clear_is_slower_than_the_others():
    summary = race_1_1.seeds_summary(races((3e6, 60.0), None, (1e6, 20.0)), 4e6)
    assert (summary["median_frames"], summary["cleared_seeds"]) == (3e6, 2)


def test_the_median_is_not_reached_when_most_seeds_did_not_clear(capsys):
    summary = race_1_1.seeds_summary(races((1e6, 20.0), None, None), 4e6)
    assert summary["median_frames"] is None and summary["median_wall_minutes"] is None
    race_1_1.print_seeds_summary(summary)
    assert "median: NOT REACHED within 4,000,000 frames" in capsys.readouterr().out


def test_an_even_count_averages_the_middle_two():
    summary = race_1_1.seeds_summary(races((1e6, 10.0), (2e6, 20.0), (4e6, 40.0), None), 5e6)
    assert summary["median_frames"] == 3e6
    assert race_1_1.seeds_summary(races((1e6, 10.0), None), 5e6)["median_frames"] is None
