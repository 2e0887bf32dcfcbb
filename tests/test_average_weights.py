"""benchmarks/campaign/average_weights.py: one policy from the mean of checkpoints' weights."""

import json
import shutil

import pytest
import torch
from repo_scripts import REPO, load_script

from mario_rl.agents import load_policy
from mario_rl.bundled import TRAINING_ONLY_FIELDS

average_weights = load_script("benchmarks/campaign/average_weights.py")
BUNDLE = REPO / "models/8-3"


def run_with(tmp_path, name, frames, shift=0.0, **changes):
    """A run directory holding the bundled 8-3 agent as checkpoint `frames`, every weight
    moved by `shift`, other fields replaced by `changes`."""
    run = tmp_path / name
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    shutil.copy(BUNDLE / "config.json", run / "config.json")
    checkpoint = torch.load(BUNDLE / "model.pt", weights_only=True)
    checkpoint["model_state"] = {k: v + shift for k, v in checkpoint["model_state"].items()}
    checkpoint["counters"] = dict(checkpoint["counters"], frames=frames)
    checkpoint["optimizer_state"] = {"state": {}, "param_groups": []}
    checkpoint.update(changes)
    path = run / "checkpoints" / f"frames_{frames}.pt"
    torch.save(checkpoint, path)
    return path


def test_the_mean_of_two_checkpoints_is_a_policy_that_loads(tmp_path, capsys):
    later = run_with(tmp_path, "run", 2_000, shift=2.0)
    earlier = run_with(tmp_path, "run", 1_000)
    out = tmp_path / "averaged/8-3/checkpoints/average.pt"
    average_weights.main([str(later), str(earlier), "--out", str(out)])

    result = torch.load(out, weights_only=True)
    original = torch.load(BUNDLE / "model.pt", weights_only=True)["model_state"]
    for name, tensor in original.items():
        assert torch.allclose(result["model_state"][name], tensor + 1.0, atol=1e-6), name
    # Oldest first whatever the order given; the newest's counters kept.
    assert [entry["frames"] for entry in result["averaged_from"]] == [1_000, 2_000]
    assert result["counters"]["frames"] == 2_000
    assert not set(TRAINING_ONLY_FIELDS) & result.keys()
    assert json.loads((tmp_path / "averaged/8-3/config.json").read_text()) == json.loads(
        (BUNDLE / "config.json").read_text()
    )
    assert load_policy(out).num_actions == 5
    assert "the mean of 2 checkpoints' weights (1,000, 2,000 frames)" in capsys.readouterr().out


def test_checkpoints_of_other_environments_are_refused(tmp_path):
    one = run_with(tmp_path, "one", 1_000)
    config = torch.load(one, weights_only=True)["env_config"]
    other = run_with(tmp_path, "other", 2_000, env_config=dict(config, resize=[84, 84]))
    with pytest.raises(SystemExit, match="its env_config differs"):
        average_weights.main([str(one), str(other), "--out", str(tmp_path / "out.pt")])
    with pytest.raises(SystemExit, match="at least two checkpoints"):
        average_weights.main([str(one), "--out", str(tmp_path / "out.pt")])
    assert not (tmp_path / "out.pt").exists()
