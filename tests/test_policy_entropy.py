"""benchmarks/campaign/policy_entropy.py: how sure a policy is where it plays greedily."""

import numpy as np
from repo_scripts import REPO, load_script

policy_entropy = load_script("benchmarks/campaign/policy_entropy.py")


def test_a_bundles_greedy_episode_is_read_step_by_step(capsys):
    rows = policy_entropy.greedy_probabilities(REPO / "models/1-1/model.pt", [30000], max_steps=40)
    assert rows.shape == (40, 5)
    assert np.allclose(rows.sum(axis=1), 1.0)
    line = policy_entropy.main([str(REPO / "models/1-1"), "--seeds", "30000"])
    assert line.startswith("models/1-1: ") or "/models/1-1: " in line
    assert "mean entropy" in line and "(uniform 1.61)" in line
    assert capsys.readouterr().out.strip() == line


def test_the_summary_counts_unsure_steps():
    sure, unsure = [0.96, 0.01, 0.01, 0.01, 0.01], [0.5, 0.5, 0.0, 0.0, 0.0]
    line = policy_entropy.summary(np.array([sure, sure, sure, unsure]))
    assert line.startswith("4 steps: ")
    assert "under 0.9 at 25% of steps, under 0.6 at 25%" in line
    assert "median 0.96" in line
