"""benchmarks/campaign/episode_strip.py: the end of a recorded episode as one picture."""

import imageio.v2 as imageio
import numpy as np
import pytest
from repo_scripts import load_script

episode_strip = load_script("benchmarks/campaign/episode_strip.py")


def frames(n: int) -> list[np.ndarray]:
    return [np.full((4, 2, 3), i, np.uint8) for i in range(n)]


def test_the_strip_spans_the_last_frames_and_ends_with_the_final_one():
    picture = episode_strip.strip(frames(10), last=5, count=3)
    assert picture.shape == (4, 6, 3)
    assert [int(picture[0, column, 0]) for column in (0, 2, 4)] == [5, 7, 9]
    assert int(episode_strip.strip(frames(10), last=5, count=1)[0, 0, 0]) == 9
    # Fewer frames than asked for: each once, in order.
    picture = episode_strip.strip(frames(2), last=30, count=5)
    assert [int(picture[0, column, 0]) for column in (0, 2)] == [0, 1]
    with pytest.raises(ValueError, match="no frames"):
        episode_strip.strip([], last=30, count=5)


def test_it_reads_a_video_and_writes_a_png(tmp_path, capsys):
    video = tmp_path / "episode.mp4"
    screens = [np.full((64, 64, 3), 20 * i, np.uint8) for i in range(8)]
    imageio.mimsave(video, screens, fps=15, macro_block_size=16)  # as `mario-rl record` does
    episode_strip.main([str(video), "--out", str(tmp_path / "end.png"), "--last", "4"])
    picture = imageio.imread(tmp_path / "end.png")
    assert picture.shape == (64, 64 * 4, 3)
    assert abs(int(picture[32, -32, 0]) - 140) < 12  # the final frame, last (lossy video)
    assert abs(int(picture[32, 32, 0]) - 80) < 12  # the 4th from the end, first
    assert "4 of the last 4 frames" in capsys.readouterr().out
