"""benchmarks/campaign/death_probe.py: continuations from shortly before an episode's end."""

import math
import re
from pathlib import Path

import pytest
from repo_scripts import REPO, load_script

SCRIPT = REPO / "benchmarks/campaign/death_probe.py"
death_probe = load_script(SCRIPT)


def probe(run, capsys, *args: str) -> str:
    death_probe.main([str(run), "--seed", "0", "--max-stuck-steps", "15", *args])
    return capsys.readouterr().out


def test_each_kind_plays_its_continuations_from_before_the_end(untrained_dqn_run, capsys):
    out = probe(
        untrained_dqn_run, capsys, "--back", "3", "--tries", "3", "--steps", "12",
        "--kinds", "greedy", "sampled", "random",
    )  # fmt: skip
    ended = re.search(r"the episode (died|was cut) at x (\d+) after (\d+) steps", out)
    start = re.search(r"from 3 steps before \(x (\d+)\), counted past x (\d+)", out)
    assert ended and start, out
    assert int(start.group(2)) == int(ended.group(2)) + 64
    assert "sampled  (a greedy-only agent: skipped)" in out
    for kind in ("greedy", "random"):
        line = re.search(rf"{kind} +past +(\d+)/3, cleared +0, furthest x median (\d+)", out)
        assert line and int(line.group(2)) >= int(start.group(1)), out


def test_a_start_before_the_episode_is_its_first_step_and_scripted_runs_every_jump(
    untrained_dqn_run, capsys
):
    out = probe(
        untrained_dqn_run, capsys, "--back", "100000", "--steps", "1", "--kinds", "scripted"
    )
    steps = re.search(r"after (\d+) steps; \d+ continuations of each kind from (\d+) steps", out)
    assert steps and steps.group(1) == steps.group(2), out
    assert re.search(r"scripted past +0/280, cleared +0", out), out


def test_the_scripted_jumps_are_every_run_up_and_hold_once():
    assert len(death_probe.SCRIPTED) == len(set(death_probe.SCRIPTED)) == 20 * 14
    assert min(death_probe.SCRIPTED) == (0, 2) and max(death_probe.SCRIPTED) == (19, 15)


@pytest.mark.parametrize("info", [{"exit": "flag"}, {"exit": "warp 4-1"}])
def test_a_flag_or_a_warp_is_a_clear_and_a_castle_loop_is_not(info):
    assert death_probe.cleared(info)
    assert not death_probe.cleared({"exit": "loop"}) and not death_probe.cleared({})


def test_policy_prints_each_step_of_the_episode_with_a_probability_and_an_entropy(capsys):
    model = Path(__file__).resolve().parents[1] / "models" / "1-1" / "model.pt"
    death_probe.main([str(model), "--seed", "0", "--policy", "--entropy-under", "0.5"])
    out = capsys.readouterr().out
    ended = re.search(r"the episode (cleared|ended at x \d+) after (\d+) steps", out)
    assert ended, out
    rows = re.findall(r"^ +(\d+) +(\d+)  (\S+) +([\d.]+) +([\d.]+)$", out, re.MULTILINE)
    assert [int(row[0]) for row in rows] == list(range(int(ended.group(2))))
    assert all(0.2 <= float(p) <= 1.0 and 0.0 <= float(h) <= 1.61 for *_, p, h in rows)
    # In nats, no less than the entropy of the preferred action against all the rest (which
    # falls as p grows past 1/2: p rounded up, as printed to 3 places, bounds it from below).
    for *_, p, h in rows:
        p = min(float(p) + 5e-4, 1 - 1e-12)
        assert float(h) + 5e-4 >= -p * math.log(p) - (1 - p) * math.log(1 - p), (p, h)
    under = sum(float(h) < 0.5 for *_, h in rows) / len(rows)
    assert f"steps under 0.5 nats: {under:.0%}" in out


def test_policy_needs_an_agent_with_probabilities(untrained_dqn_run, capsys):
    with pytest.raises(SystemExit):
        death_probe.main([str(untrained_dqn_run), "--seed", "0", "--policy"])
    assert "gives no action probabilities" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--back", "0", "expected a positive integer"),
        ("--noop-max", "-1", "expected a whole number >= 0"),
        ("--sticky", "2", "expected a number in [0, 1)"),
        ("--entropy-under", "0", "expected a positive number"),
    ],
)
def test_bad_input_is_refused_before_the_agent_loads(flag, value, expected, capsys):
    with pytest.raises(SystemExit) as stop:
        death_probe.main(["no/such/run", flag, value])
    assert stop.value.code == 2 and expected in capsys.readouterr().err


def test_scripted_passes_are_counted_by_run_up_and_by_hold_out_of_those_tried():
    lines = death_probe.scripted_breakdown([(5, 6), (5, 9), (7, 9)])
    assert lines == [
        "past by steps of right+B first: 5: 2/14, 7: 1/14",
        "past by steps of right+A+B held: 6: 1/20, 9: 2/20",
    ]
    assert death_probe.scripted_breakdown([]) == []
