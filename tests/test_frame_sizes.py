"""benchmarks/campaign/frame_sizes.py: what a policy sees of the screen at two frame sizes."""

import json
import shutil
from dataclasses import replace

import imageio.v2 as imageio
import numpy as np
import pytest
from repo_scripts import REPO, load_script

from mario_rl.env.pipeline import make_env
from mario_rl.presets import get_preset

frame_sizes = load_script("benchmarks/campaign/frame_sizes.py")
BUNDLE = REPO / "models/8-3"


def test_the_picture_at_42_is_the_frame_the_recipe_sees():
    env = make_env(replace(get_preset("ppo-levels").env, noop_max=0, sticky_probability=0))
    try:
        env.reset(seed=0)
        for _ in range(20):  # standing still, so a step's two pooled frames are alike
            obs, *_ = env.step(0)
        gray = env.unwrapped.emulator.observation("grayscale")
    finally:
        env.close()
    small = frame_sizes.shrunk(gray, 42)
    # Below the score line (the clock ticks there between a step's two pooled screens),
    # standing still, the pipeline's frame is this one to the pixel.
    below_the_score_line = slice(7, None)
    assert np.array_equal(small[below_the_score_line], obs[-1][below_the_score_line])
    picture = frame_sizes.seen_at(gray, 42)
    assert picture.shape == (240, 256, 3)
    assert set(np.unique(picture)) == set(np.unique(small))  # blown up, nothing blended


def test_a_bundles_episode_is_drawn_at_each_size(tmp_path, capsys):
    out = tmp_path / "frames.png"
    frame_sizes.main([str(BUNDLE), "--seed", "10008", "--back", "3", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    # The report's own episode: it ends where eval.json says (a hit at x 1866).
    assert "ended at x 1866 (hit)" in printed and "(the report: x 1866, died, hit)" in printed
    assert "NOT the report's episode" not in printed
    assert imageio.imread(out).shape == (2 * 240, 3 * 256, 3)


def test_sampled_reports_and_steps_after_the_end_are_refused(tmp_path, capsys):
    report = json.loads((BUNDLE / "eval.json").read_text())
    (tmp_path / "eval.json").write_text(json.dumps({**report, "acting": "sampled"}))
    shutil.copy(BUNDLE / "model.pt", tmp_path / "model.pt")
    out = ["--out", str(tmp_path / "frames.png")]
    with pytest.raises(SystemExit, match=r"played sampled .* only greedy episodes"):
        frame_sizes.main([str(tmp_path), "--seed", "10008", *out])
    with pytest.raises(SystemExit):
        frame_sizes.main([str(BUNDLE), "--seed", "10008", "--back", "-1", *out])
    assert "expected steps before the end (0 or more), got -1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        frame_sizes.main([str(BUNDLE), "--seed", "10008", "--sizes", "42", "0", *out])
    assert "--sizes: expected frame sizes of 1 pixel or more, got 0" in capsys.readouterr().err
    assert not (tmp_path / "frames.png").exists()
