"""benchmarks/campaign/trial_vs_control.py: a trial's level beside its control's."""

import json

import pytest
from repo_scripts import load_script

trial_vs_control = load_script("benchmarks/campaign/trial_vs_control.py")


def table(root, level, checks, episodes, run="levels/{level}/run/8-3__ppo__0__x"):
    """A campaign folder: the level's checks.json and one run's episodes.csv."""
    folder = root / "levels" / level
    folder.mkdir(parents=True)
    if checks is not None:
        (folder / "checks.json").write_text(json.dumps(checks))
    run_dir = root / run.format(level=level)
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = ["frames,episode,flag,max_x"]
    lines += [f"{frames},{i},{flag},{100 + 10 * i}" for i, (frames, flag) in enumerate(episodes)]
    (run_dir / "episodes.csv").write_text("\n".join(lines) + "\n")
    return root


def test_checks_and_training_flags_line_up_by_million(tmp_path, capsys):
    control = table(
        tmp_path / "control",
        "8-3",
        [
            {"frames": 1_000_200, "clears": 0, "played": 6},
            {"frames": 2_000_100, "clears": 40, "played": 50},
        ],
        [(10, 0), (999_999, 1), (1_000_000, 1), (1_500_000, 1), (1_900_000, 0)],
    )
    # The trial's first check is not taken yet; its run sits where `runs/` puts it.
    trial = table(
        tmp_path / "trial", "8-3", None, [(5, 0), (6, 0), (7, 0), (8, 1)], "levels/{level}/r"
    )
    trial_vs_control.main(["8-3", "--control", str(control), "--trial", str(trial)])
    rows = capsys.readouterr().out.splitlines()
    assert rows[2] == "| 0M-1M | 0 of 6 at 1,000,200 | - | 50% of 2, x 105 | 25% of 4, x 115 |"
    assert rows[3] == "| 1M-2M | 40 of 50 at 2,000,100 | - | 67% of 3, x 130 | - |"
    assert len(rows) == 4


def test_a_level_not_begun_or_with_two_runs_is_refused(tmp_path):
    control = table(tmp_path / "control", "8-3", [], [(1, 0)])
    with pytest.raises(SystemExit, match="2-2 has not begun there"):
        trial_vs_control.main(["2-2", "--control", str(control), "--trial", str(control)])
    (control / "levels/8-3/run/another").mkdir(parents=True)
    (control / "levels/8-3/run/another/episodes.csv").write_text("frames,flag\n")
    with pytest.raises(SystemExit, match="expected one run of 8-3, found"):
        trial_vs_control.main(["8-3", "--control", str(control), "--trial", str(control)])
