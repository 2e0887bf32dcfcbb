"""benchmarks/campaign/death_probe.py: continuations from shortly before an episode's end."""

import importlib.util
import re
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "campaign" / "death_probe.py"
spec = importlib.util.spec_from_file_location("death_probe", SCRIPT)
death_probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(death_probe)


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
