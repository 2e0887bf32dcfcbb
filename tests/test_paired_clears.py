"""benchmarks/campaign/paired_clears.py: two agents' clears paired by seed."""

import json

import pytest
from repo_scripts import REPO, load_script

paired_clears = load_script("benchmarks/campaign/paired_clears.py")


def report(tmp_path, name, cleared, level="8-3", first_seed=10000):
    path = tmp_path / f"{name}.json"
    episodes = [{"seed": first_seed + i, "cleared": c} for i, c in enumerate(cleared)]
    path.write_text(json.dumps({"level": level, "per_episode": episodes}))
    return path


def test_the_sign_test_is_the_exact_binomial_tail():
    assert paired_clears.sign_test(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 2**12)
    assert paired_clears.sign_test(2, 10) == paired_clears.sign_test(10, 2)
    assert paired_clears.sign_test(7, 7) == 1.0
    assert paired_clears.sign_test(0, 0) == 1.0


def test_pairs_count_seed_by_seed_and_pool(tmp_path, capsys):
    trial = report(tmp_path, "trial", [True, True, False, True])
    control = report(tmp_path, "control", [True, False, True, False])
    other_trial = report(tmp_path, "t2", [True, False], level="2-3", first_seed=20000)
    other_control = report(tmp_path, "c2", [False, False], level="2-3", first_seed=20000)
    lines = paired_clears.main(
        ["--pair", str(trial), str(control), "--pair", str(other_trial), str(other_control)]
    )
    assert lines[0] == (
        "8-3 seeds 10000..10003: trial 3/4, control 2/4; both 1, trial alone 2, control alone 1"
    )
    assert lines[1].startswith("2-3 seeds 20000..20001: trial 1/2, control 0/2; both 0")
    assert lines[2] == (
        "pooled over 6 episodes each: trial 4, control 2; cleared by one alone: trial 3, "
        "control 1; two-sided sign test p = 0.625"
    )
    assert capsys.readouterr().out.splitlines() == lines


def test_reports_on_other_seeds_or_levels_do_not_pair(tmp_path):
    trial = report(tmp_path, "trial", [True, False])
    with pytest.raises(SystemExit, match="not the same level and seeds"):
        paired_clears.main(["--pair", str(trial), str(report(tmp_path, "c", [True], level="8-3"))])
    with pytest.raises(SystemExit, match="not the same level and seeds"):
        paired_clears.main(["--pair", str(trial), str(report(tmp_path, "d", [True, False], "2-3"))])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit, match="not an evaluation report"):
        paired_clears.main(["--pair", str(trial), str(tmp_path / "bad.json")])


def test_the_kept_averaging_trial_reports_pool_to_a_tie():
    kept = REPO / "benchmarks/campaign/averaged"
    pairs = []
    for level in ("8-3", "2-3", "2-4", "1-2"):
        pairs += ["--pair", str(kept / f"{level}-average-20000.json")]
        pairs += [str(kept / f"{level}-bundle-20000.json")]
    assert paired_clears.main(pairs)[-1] == (
        "pooled over 200 episodes each: trial 156, control 159; cleared by one alone: trial 7, "
        "control 10; two-sided sign test p = 0.629"
    )
