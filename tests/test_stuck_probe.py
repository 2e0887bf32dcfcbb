"""benchmarks/stuck_probe.py: each action held from where an agent stalls."""

import re

import pytest
from repo_scripts import load_script

stuck_probe = load_script("benchmarks/stuck_probe.py")


def test_each_action_of_the_set_is_held_from_the_stall(untrained_dqn_run, capsys, tmp_path):
    # This untrained agent walks into 2-1's first staircase and stands there: only
    # a jump gets it further.
    png = tmp_path / "stuck.png"
    stuck_probe.main(
        [str(untrained_dqn_run), "--level", "2-1", "--seed", "0", "--stuck-steps", "3",
         "--hold", "4", "--settle", "1", "--png", str(png), "--step-back", "2"]
    )  # fmt: skip
    out = capsys.readouterr().out
    stall = re.search(r"stuck after (\d+) steps at x (\d+)", out)
    assert stall, out
    assert png.stat().st_size > 0
    rows = re.findall(r"^ +(\d) (\S+) +x +\d+ \(([+-]\d+)\), y +\d+ \([+-]\d+\), (.+)$", out, re.M)
    assert [int(row[0]) for row in rows] == list(range(5)), out  # right_only's 5 actions
    assert rows[0][1] == "NOOP" and all(row[3] == "held 4 steps" for row in rows), out
    assert {name for _, name, dx, _ in rows if int(dx) > 0} == {"right+A", "right+A+B"}, out
    assert "--step-back: the action set right_only has no left" in out


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--sticky", "1", "expected a number in [0, 1)"),
        ("--seed", "-1", "expected a whole number >= 0"),
        ("--hold", "0", "expected a positive integer"),
        ("--level", "9-9", "unknown level"),
    ],
)
def test_bad_input_is_refused_before_the_agent_loads(flag, value, expected, capsys):
    with pytest.raises(SystemExit) as stop:
        stuck_probe.main(["no/such/run", flag, value])
    assert stop.value.code == 2 and expected in capsys.readouterr().err
