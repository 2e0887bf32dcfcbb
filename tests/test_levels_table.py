"""`mario-rl levels-table`: a tiny-budget run, the Markdown, and resuming a partial table."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mario_rl import levels_table, training
from mario_rl.agents.ppo import PPOConfig
from mario_rl.cli.main import main
from mario_rl.presets import PRESETS
from mario_rl.runs import list_checkpoints, newest_run

ROLLOUT_STEPS = 32
"""ppo-fast's rollouts here: 2 envs x 32 steps x 4 frames = 256 frames (and no-op frames)."""


@pytest.fixture(autouse=True)
def short_rollouts():
    """ppo-fast with rollouts of `ROLLOUT_STEPS` steps, not 128, in every table and run
    here: a table's pieces and checks come in a quarter of the frames. Not through the
    test's `monkeypatch`, which a test may undo."""
    preset = PRESETS["ppo-fast"]
    short = replace(preset, agent=replace(preset.agent, num_steps=ROLLOUT_STEPS))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PRESETS, "ppo-fast", short)
        yield


def tiny_table_args(tmp_path, out) -> list[str]:
    """levels-table on 1-1 with a 200-frame budget and one evaluation episode."""
    return [
        "levels-table", "--levels", "1-1", "--frames", "200", "--num-envs", "2",
        "--episodes", "1", "--max-stuck-steps", "5", "--out", str(out),
        "--runs-dir", str(tmp_path / "runs"), "--quiet",
    ]  # fmt: skip


def test_a_tiny_table_is_written_and_resumed_without_retraining(tmp_path, monkeypatch, capsys):
    out = tmp_path / "table.md"
    args = tiny_table_args(tmp_path, out)
    assert main(args) == 0
    state = json.loads(out.with_suffix(".json").read_text())
    row = state["rows"]["1-1"]
    assert row["frames"] >= 200 and row["episodes"] == 1 and row["cleared"] is False
    table = out.read_text()
    header = "| level | write-up passed | cleared | clear rate | exit | max x | % of level |"
    assert header in table
    share = f"{row['max_x'] / 3161:.0%}"
    assert f"| 1-1 | yes | no | 0/1 | - | {row['max_x']} | {share} |" in table

    def no_training(*args, **kwargs):
        raise AssertionError("a level already in the table was trained again")

    monkeypatch.setitem(training.TRAINERS, PPOConfig, no_training)
    assert main(args) == 0
    assert "1-1: already in" in capsys.readouterr().out
    assert json.loads(out.with_suffix(".json").read_text()) == state


def test_a_table_trains_each_level_on_from_its_row_in_another_table(tmp_path, capsys):
    """The column of more frames: each level's run starts from the other table's checkpoint
    for it, with a fresh schedule, and its row shows the frames behind that checkpoint."""
    first = tmp_path / "first.md"
    assert main(tiny_table_args(tmp_path, first)) == 0
    before = json.loads(first.with_suffix(".json").read_text())["rows"]["1-1"]
    (checkpoint,) = list_checkpoints(Path(before["run_dir"]) / "checkpoints")
    more = tmp_path / "more.md"

    def more_args(out, level="1-1", runs="more-runs"):
        return [
            "levels-table", "--levels", level, "--frames", "300", "--num-envs", "2",
            "--episodes", "1", "--max-stuck-steps", "5", "--out", str(out), "--quiet",
            "--runs-dir", str(tmp_path / runs), "--init-from-table", str(first),
        ]  # fmt: skip

    assert main(more_args(more)) == 0
    state = json.loads(more.with_suffix(".json").read_text())
    assert state["recipe"]["init_from_table"] == str(first)
    row = state["rows"]["1-1"]
    assert row["init_frames"] == before["frames"] and row["frames"] >= 300
    config = json.loads((Path(row["run_dir"]) / "config.json").read_text())
    assert config["init_from"] == {"checkpoint": str(checkpoint), "frames": before["frames"]}
    assert config["run"]["schedule_frames"] == 300
    assert f"| {before['frames']:,} + {row['frames']:,} |" in more.read_text()
    command = levels_table.level_command(state["recipe"], "1-1", 2)
    assert command.endswith(f"--init-from-table {first}")
    # A level without a row there, or whose run there is gone, is refused before training.
    assert main(more_args(tmp_path / "x.md", level="1-2")) == 2
    assert "no row for 1-2 (rows: 1-1)" in capsys.readouterr().err
    checkpoint.unlink()
    assert main(more_args(tmp_path / "y.md", runs="other-runs")) == 2
    assert "which is gone (restore that table's runs first)" in capsys.readouterr().err
    assert not (tmp_path / "more-runs" / "1-2").exists()
    assert not (tmp_path / "other-runs" / "1-1").exists()
    # A run from scratch in its folder is not taken for a level trained on.
    scratch = ["train", "--preset", "ppo-fast", "--level", "1-1", "--frames", "100", "--quiet"]
    assert main([*scratch, "--num-envs", "2", "--runs-dir", str(tmp_path / "z-runs" / "1-1")]) == 0
    assert main(more_args(tmp_path / "z.md", runs="z-runs")) == 2
    assert "was trained from scratch, not on from" in capsys.readouterr().err


def test_a_stop_between_a_check_and_its_row_checks_that_checkpoint_once(tmp_path, monkeypatch):
    """Before, the check written before the stop and the same check made again were both
    kept: the row listed that checkpoint's frames twice."""
    out = tmp_path / "table.md"
    args = tiny_table_args(tmp_path, out)

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr("mario_rl.record.plot_death_map", stopped)
        assert main(args) == 130
    assert len(json.loads((tmp_path / "runs" / "1-1" / "checks.json").read_text())) == 1
    assert main(args) == 0
    row = json.loads(out.with_suffix(".json").read_text())["rows"]["1-1"]
    assert len(row["checks"]) == 1 and row["checks"][0]["frames"] == row["frames"]


def test_a_stop_after_training_says_the_level_is_running(tmp_path, monkeypatch):
    """The progress line was written only at a level's start and after its checks, so a
    stop in between left the level begun since listed as pending."""
    out = tmp_path / "table.md"

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(levels_table, "evaluate_level", stopped)
    assert main(tiny_table_args(tmp_path, out)) == 130
    frames = levels_table.checkpoint_frames(newest_run(tmp_path / "runs" / "1-1"))
    assert out.read_text().splitlines()[-1] == (
        f"Done: none. Running: 1-1 ({frames:,} frames). Pending: none."
    )


def test_a_table_of_another_recipe_is_refused(tmp_path, capsys):
    out = tmp_path / "table.md"
    recipe = {"preset": "ppo-fast", "frames": 100}
    out.with_suffix(".json").write_text(json.dumps({"recipe": recipe, "rows": {}}))
    code = main(["levels-table", "--levels", "1-1", "--frames", "200", "--out", str(out)])
    assert code == 2
    assert "pass another --out, or the same settings" in capsys.readouterr().err


def test_a_stop_during_the_first_level_keeps_its_recipe(tmp_path, monkeypatch, capsys):
    """The recipe is saved before the first level trains: continuing that level with
    another cap would change its learning-rate schedule mid-run, so it is refused."""

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setitem(training.TRAINERS, PPOConfig, stopped)
    out = tmp_path / "table.md"
    args = ["levels-table", "--levels", "1-1", "--out", str(out), "--quiet"]
    args += ["--runs-dir", str(tmp_path / "runs")]
    assert main([*args, "--frames", "10e6"]) == 130
    state = json.loads(out.with_suffix(".json").read_text())
    assert state["recipe"]["frames"] == 10_000_000 and state["rows"] == {}
    assert main([*args, "--frames", "5e6"]) == 2
    assert "pass another --out, or the same settings" in capsys.readouterr().err


def test_markdown_gives_the_share_of_the_level_from_the_level_data():
    recipe = {"preset": "ppo-fast", "frames": 1000, "seed": 0, "episodes": 10, "sticky": 0.25}
    row = {"cleared": True, "clears": 10, "episodes": 10, "max_x": 2425, "frames": 1000,
           "minutes": 1.0, "measured_flag_x": 2425}  # fmt: skip
    rows = {
        "1-2": {**row, "exits": {"flag": 10}},  # its flag is in its exit area, at x 3161
        "1-3": {**row, "measured_flag_x": None},  # a row from before exits were recorded
        "5-1": {**row, "exits": {"flag": 7, "warp 4-1": 3}},
        "1-4": {**row, "cleared": False, "clears": 2, "max_x": 1128},  # the axe at x 2256
    }
    text = levels_table.markdown(recipe, rows)
    assert "| 1-2 | yes | yes | 10/10 | flag | 2425 | 77% | 1,000 | 1.0 | - |" in text
    assert "| 1-3 | no | yes | 10/10 | ? | 2425 | 100% |" in text
    assert "| 5-1 | - | yes | 10/10 | flag 7, warp 4-1 3 | 2425 | 76% |" in text
    assert "| 1-4 | yes | no | 2/10 | ? | 1128 | 50% |" in text
    assert "sticky 0.25, no-ops 0..30" in text


@pytest.mark.parametrize(("episodes", "needed"), [(50, 45), (10, 9), (3, 3), (1, 1)])
def test_clears_needed_is_the_fewest_that_count_as_cleared(episodes, needed):
    assert levels_table.clears_needed(episodes) == needed
    assert needed >= levels_table.CLEARED_RATE * episodes > needed - 1


@pytest.mark.parametrize(
    ("level", "length"), [("1-1", 3161), ("1-3", 2425), ("8-4", 4816), ("1-2", 3161)]
)
def test_level_length_is_the_end_in_the_level_data(level, length):
    assert levels_table.level_length(level) == length


def test_progress_says_which_levels_are_done_running_or_pending(tmp_path):
    runs = tmp_path / "runs"
    (runs / "1-2" / "run_a" / "checkpoints").mkdir(parents=True)
    (runs / "1-2" / "run_a" / "checkpoints" / "frames_250000.pt").write_bytes(b"")
    (runs / "1-3" / "run_b" / "checkpoints").mkdir(parents=True)  # started, no checkpoint yet
    rows = {"1-1": {}}
    lines = levels_table.progress_lines(["1-1", "1-2", "1-3", "1-4"], rows, str(runs), 50)
    assert lines == ["Done: 1-1. Running: 1-2 (250,000 frames). Pending: 1-3, 1-4."]
    checks = [{"frames": 100000, "clears": 0, "played": 6}, {"frames": 200000, "clears": 18}]
    (runs / "1-2" / "checks.json").write_text(json.dumps(checks))
    lines = levels_table.progress_lines(["1-2"], {}, str(runs), 50)
    assert lines == [
        "Done: none. Running: 1-2 (250,000 frames; last check 18/50 at 200,000). Pending: none."
    ]
    # With training episodes logged: how many of the last ones reached the flag.
    rows = "".join(f"{i * 100},{i},0,0,0,0,{flag},0,0,0,\n" for i, flag in enumerate("10010"))
    header = "frames,episode,return,length,episode_frames,max_x,flag,time_left,score,wall_s,level\n"
    (runs / "1-2" / "run_a" / "episodes.csv").write_text(header + rows)
    assert levels_table.training_flag_rate(runs / "1-2" / "run_a", last=4) == (0.25, 4)
    (line,) = levels_table.progress_lines(["1-2"], {}, str(runs), 50)
    assert "; flag in 40% of its last 5 training episodes)" in line
    assert levels_table.check_text(checks[0], 50) == "0/6 played of 50 at 100,000"
    assert newest_run(runs / "1-2") == runs / "1-2" / "run_a"
    assert newest_run(runs / "1-3") is None
    assert newest_run(runs / "4-4") is None


def test_a_stopped_level_continues_from_its_checkpoint(tmp_path):
    runs = tmp_path / "runs"
    small = ["--num-envs", "2", "--quiet", "--seed", "0"]
    # A first piece of 1-1's training, as a stopped levels-table leaves it.
    first = ["train", "--preset", "ppo-fast", "--level", "1-1", "--frames", "200"]
    assert main([*first, *small, "--runs-dir", str(runs / "1-1")]) == 0
    (stopped,) = (runs / "1-1").iterdir()
    out = tmp_path / "table.md"
    table = ["levels-table", "--levels", "1-1", "--frames", "500", "--episodes", "1"]
    assert main([*table, *small, "--max-stuck-steps", "5", "--out", str(out),
                 "--runs-dir", str(runs)]) == 0  # fmt: skip
    row = json.loads(out.with_suffix(".json").read_text())["rows"]["1-1"]
    assert row["run_dir"] == str(stopped), "the stopped run went on; no new run was started"
    assert [path for path in (runs / "1-1").iterdir() if (path / "config.json").is_file()] == [
        stopped
    ]
    # Its first checkpoint was checked before any more training, then the cap's.
    first_frames = row["checks"][0]["frames"]
    assert len(row["checks"]) == 2 and 0 < first_frames < 500 <= row["frames"]
    assert json.loads((runs / "1-1" / "checks.json").read_text()) == row["checks"]
    assert "Done: 1-1. Running: none. Pending: none." in out.read_text()
    # Where the episodes ended, beside the table.
    assert row["death_map"] == str(tmp_path / "table.1-1.png")
    assert (tmp_path / "table.1-1.png").read_bytes().startswith(b"\x89PNG")


def test_with_check_every_a_level_is_evaluated_at_each_check_up_to_the_cap(tmp_path):
    out = tmp_path / "table.md"
    args = [
        "levels-table", "--levels", "1-1", "--frames", "450", "--check-every", "250",
        "--num-envs", "2", "--episodes", "3", "--max-stuck-steps", "5", "--out", str(out),
        "--runs-dir", str(tmp_path / "runs"), "--quiet", "--eval-workers", "1",
    ]  # fmt: skip
    assert main(args) == 0
    row = json.loads(out.with_suffix(".json").read_text())["rows"]["1-1"]
    # Not cleared at any check (a rollout or two of training), so it ran to the cap: a check
    # after each piece of at least 250 frames, the last at or past 450.
    frames_checked = [check["frames"] for check in row["checks"]]
    assert len(frames_checked) >= 2 and frames_checked == sorted(frames_checked)
    assert frames_checked[0] >= 250 and frames_checked[-1] >= 450 > frames_checked[-2]
    assert row["frames"] == frames_checked[-1] and row["cleared"] is False
    # 3 of 3 clears are needed, so a check stops at its first failure; the cap's plays all.
    assert [check["played"] for check in row["checks"]] == [1] * (len(frames_checked) - 1) + [3]
    assert row["episodes"] == 3
    level_runs = tmp_path / "runs" / "1-1"
    runs = [path for path in level_runs.iterdir() if (path / "config.json").is_file()]
    assert len(runs) == 1, "one run, resumed"
    # The learning rate anneals over the level's cap, not each piece: the first piece's
    # one rollout (2 envs x 32 steps x 4 frames, and no-op and skipped frames) is learned
    # a little past 256 of the 450 frames, not past its piece's end (where it would be 0).
    assert json.loads((runs[0] / "config.json").read_text())["run"]["schedule_frames"] == 450
    first_piece = torch.load(list_checkpoints(runs[0] / "checkpoints")[0], weights_only=False)
    learning_rate = first_piece["optimizer_state"]["param_groups"][0]["lr"]
    assert 5e-4 * (1 - 400 / 450) < learning_rate <= 5e-4 * (1 - 256 / 450)
    # Each check's report is kept beside the runs.
    for check in row["checks"]:
        kept = json.loads(levels_table.check_report_path(level_runs, check["frames"]).read_text())
        assert (kept["episodes"], kept["clears"]) == (check["played"], check["clears"])


def test_a_level_stopped_mid_piece_goes_on_to_its_target_before_checking(tmp_path):
    runs = tmp_path / "runs"
    small = ["--num-envs", "2", "--quiet", "--seed", "0"]
    # A piece aiming at 350 frames, stopped after its first rollout (about 300 frames:
    # 2 envs x 32 steps x 4 frames, and no-op frames), as Ctrl-C leaves it; the table's own
    # settings, which it checks before continuing a run.
    first = ["train", "--preset", "ppo-fast", "--level", "1-1", "--frames", "100"]
    first += ["--schedule-frames", "700"]
    assert main([*first, *small, "--runs-dir", str(runs / "1-1")]) == 0
    (stopped,) = (runs / "1-1").iterdir()
    assert levels_table.checkpoint_frames(stopped) < 350
    (runs / "1-1" / "piece.json").write_text(json.dumps({"target": 350}))
    out = tmp_path / "table.md"
    table = ["levels-table", "--levels", "1-1", "--frames", "700", "--check-every", "350"]
    assert main([*table, *small, "--episodes", "1", "--max-stuck-steps", "5",
                 "--out", str(out), "--runs-dir", str(runs)]) == 0  # fmt: skip
    checked = [check["frames"] for check in json.loads(out.with_suffix(".json").read_text())
               ["rows"]["1-1"]["checks"]]  # fmt: skip
    # No check of the stopped checkpoint; one at the piece's target, one at the cap.
    assert len(checked) == 2 and checked[0] >= 350 and checked[1] >= 700


def test_a_cleared_level_is_bundled_on_fresh_seeds(tmp_path, monkeypatch):
    out, models = tmp_path / "table.md", tmp_path / "models"
    args = [
        "levels-table", "--levels", "1-1", "--frames", "200", "--num-envs", "2",
        "--episodes", "1", "--max-stuck-steps", "5", "--out", str(out),
        "--runs-dir", str(tmp_path / "runs"), "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    assert not models.exists()  # not cleared, and no --bundle: nothing bundled
    # Mark the row cleared, as a piece that cleared and stopped before bundling leaves it.
    state_path = out.with_suffix(".json")
    state = json.loads(state_path.read_text())
    state["rows"]["1-1"]["cleared"] = True
    state_path.write_text(json.dumps(state))

    def no_training(*args, **kwargs):
        raise AssertionError("bundling trained the level again")

    monkeypatch.setitem(training.TRAINERS, PPOConfig, no_training)
    assert main([*args, "--bundle", str(models)]) == 0
    report = json.loads((models / "1-1" / "eval.json").read_text())
    assert report["seeds"] == [levels_table.BUNDLE_SEED_OFFSET] * 2  # not the checks' seed 0
    assert report["sticky_probability"] == 0.25 and "deterministic_eval" in report
    assert report["control"]["episodes"] == 1
    command = (models / "1-1" / "command.txt").read_text().splitlines()[0]
    assert command.startswith("mario-rl levels-table --preset ppo-fast --levels 1-1 --frames 200")
    assert "--num-envs 2" in command
    bundle = json.loads(state_path.read_text())["rows"]["1-1"]["bundle"]
    assert bundle["clears"] == report["clears"] and bundle["episodes"] == 1
    assert f"| {levels_table.bundle_text(bundle)} |" in out.read_text()
    # Bundled once: a second resume leaves the folder as it is.
    stamp = (models / "1-1" / "eval.json").stat().st_mtime_ns
    assert main([*args, "--bundle", str(models)]) == 0
    assert (models / "1-1" / "eval.json").stat().st_mtime_ns == stamp


def test_evaluations_run_torch_on_one_thread_and_restore_it():
    """Evaluation workers take the caller's torch thread count, so the table's checks run
    with one: after training it is back to one per core, which the workers would multiply."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with levels_table.one_torch_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_bundling_a_cleared_level_whose_run_was_lost_says_so(tmp_path):
    row = {"run_dir": str(tmp_path / "lost"), "frames": 1000, "cleared": True, "checks": []}
    with pytest.raises(ValueError, match="has no checkpoint to bundle"):
        levels_table.bundle_level("1-2", row, {"seed": 0}, tmp_path / "models", 8)


def test_one_model_is_evaluated_on_every_level_into_the_same_columns(tmp_path, monkeypatch, capsys):
    out = tmp_path / "model.md"
    args = [
        "levels-table", "--model", "models/1-1/model.pt", "--levels", "1-1", "4-1",
        "--episodes", "1", "--max-stuck-steps", "5", "--eval-workers", "1",
        "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    state = json.loads(out.with_suffix(".json").read_text())
    recipe = state["recipe"]
    assert recipe["trained_on"] == ["1-1"] and recipe["frames"] == 5_000_474
    assert recipe["acting"] == "greedy"
    assert list(state["rows"]) == ["1-1", "4-1"]
    table = out.read_text()
    assert table.startswith("One model, `models/1-1/model.pt` (5,000,474 frames on 1-1)")
    for level, row in state["rows"].items():
        assert row["frames"] == 5_000_474 and row["minutes"] is None and row["episodes"] == 1
        cleared = "yes" if row["cleared"] else "no"
        assert f"| {level} | yes | {cleared} | {row['clears']}/1 |" in table
        assert (tmp_path / f"model.{level}.png").is_file()
        assert (tmp_path / f"model.{level}.json").is_file()
    assert "Done: 1-1, 4-1. Pending: none." in table

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a level already in the table was evaluated again")

    monkeypatch.setattr("mario_rl.evaluate.evaluate", no_evaluation)
    assert main(args) == 0
    assert json.loads(out.with_suffix(".json").read_text()) == state
    # Another model, or another evaluation, is refused rather than mixed in.
    capsys.readouterr()
    assert main([*args[:2], "models/4-1", *args[3:]]) == 2
    assert "holds a table made with" in capsys.readouterr().err
    assert main([*args, "--sticky", "0"]) == 2
    assert "holds a table made with" in capsys.readouterr().err


def test_a_model_table_trains_nothing_and_a_training_table_needs_frames(tmp_path, capsys):
    out = str(tmp_path / "t.md")
    code = main(["levels-table", "--model", "models/1-1", "--levels", "1-1", "--frames", "1e6",
                 "--bundle", "models", "--out", out])  # fmt: skip
    assert code == 2
    assert "trains nothing: drop --frames, --bundle" in capsys.readouterr().err
    assert main(["levels-table", "--levels", "1-1", "--out", out]) == 2
    assert "--frames is required" in capsys.readouterr().err


def made_up_clears(monkeypatch, failed_confirmations: set[int]) -> list[int]:
    """Evaluations that play every episode but report all of them cleared, except the
    confirmations numbered in `failed_confirmations` (1: the first), which clear none;
    returns the list the seeds asked for are appended to."""
    real_evaluate = levels_table.evaluate_level
    seeds_asked: list[int] = []

    def evaluate(policy, level, recipe, workers, stop_after_failures=None, progress=False,
                 seed_offset=0):  # fmt: skip
        seeds_asked.append(recipe["seed"] + seed_offset)
        report = real_evaluate(policy, level, recipe, 1, None, progress, seed_offset)
        confirmations = seeds_asked.count(recipe["seed"] + levels_table.CONFIRM_SEED_OFFSET)
        failed = seed_offset and confirmations in failed_confirmations
        clears = 0 if failed else report["episodes"]
        return {**report, "clears": clears, "clear_rate": clears / report["episodes"]}

    monkeypatch.setattr(levels_table, "evaluate_level", evaluate)
    return seeds_asked


def confirm_table_args(tmp_path, out) -> list[str]:
    """levels-table on 1-1, checks every 250 frames to an 875-frame cap, 2 episodes."""
    return [
        "levels-table", "--levels", "1-1", "--frames", "875", "--check-every", "250",
        "--num-envs", "2", "--episodes", "2", "--max-stuck-steps", "5", "--out", str(out),
        "--runs-dir", str(tmp_path / "runs"), "--quiet", "--eval-workers", "1",
    ]  # fmt: skip


def test_with_confirm_a_check_that_clears_counts_only_once_other_seeds_clear_too(
    tmp_path, monkeypatch
):
    """Stopping at the first of many close checks that clears picks a lucky one: with
    `--confirm` the checkpoint plays the episodes again on other seeds, and a failed
    confirmation sends the level on to its next check."""
    # Every check clears; the first confirmation does not, the second does.
    seeds_asked = made_up_clears(monkeypatch, failed_confirmations={1})
    out = tmp_path / "table.md"
    args = confirm_table_args(tmp_path, out)
    models = tmp_path / "models"
    assert main([*args, "--confirm", "--bundle", str(models)]) == 0
    state = json.loads(out.with_suffix(".json").read_text())
    assert state["recipe"]["confirm"] is True
    row = state["rows"]["1-1"]
    first, second = row["checks"]
    assert first["clears"] == 2 and first["confirm"] == {"clears": 0, "played": 2}
    assert second["confirm"] == {"clears": 2, "played": 2}
    assert row["cleared"] is True and row["frames"] == second["frames"] < 875
    assert seeds_asked == [0, 5000, 0, 5000]
    # The bundle's notes say the check was confirmed.
    command, note = (models / "1-1" / "command.txt").read_text().splitlines()[:2]
    assert command.endswith(" --confirm")
    assert note.startswith("# The first checkpoint whose check and its confirmation (seeds 5000..)")
    level_runs = tmp_path / "runs" / "1-1"
    assert levels_table.confirm_report_path(level_runs, first["frames"]).is_file()
    assert "| 1-1 | yes | yes | 2/2 (2/2) |" in out.read_text()
    assert "of them and of as many episodes again on seeds 5000.." in out.read_text()
    assert levels_table.check_text(first, 2) == (f"2/2 at {first['frames']:,} (confirm 0/2)")
    # Without it the same checks stop at the first, unconfirmed; and a table made without
    # confirmation is not continued with it (nor the other way round).
    seeds_asked.clear()
    plain = tmp_path / "plain.md"
    assert main([*args[:-7], "--out", str(plain), "--runs-dir", str(tmp_path / "plain"),
                 "--quiet", "--eval-workers", "1"]) == 0  # fmt: skip
    row = json.loads(plain.with_suffix(".json").read_text())["rows"]["1-1"]
    assert len(row["checks"]) == 1 and "confirm" not in row and seeds_asked == [0]
    assert main([*args[:-7], "--out", str(plain), "--runs-dir", str(tmp_path / "plain"),
                 "--quiet", "--confirm"]) == 2  # fmt: skip
    # A row decided before the table confirmed, bundled once it does: its command and note
    # say how it was decided, not what the recipe asks now.
    state = json.loads(plain.with_suffix(".json").read_text())
    state["recipe"]["confirm"] = True
    plain.with_suffix(".json").write_text(json.dumps(state))
    assert main([*args[:-7], "--out", str(plain), "--runs-dir", str(tmp_path / "plain"),
                 "--quiet", "--eval-workers", "1", "--confirm",
                 "--bundle", str(tmp_path / "plain-models")]) == 0  # fmt: skip
    command, note = (tmp_path / "plain-models" / "1-1" / "command.txt").read_text().splitlines()[:2]
    assert "--confirm" not in command and "its confirmation" not in note
    assert "a row without one was decided by its check alone" in plain.read_text()


def test_an_unconfirmed_pass_at_the_cap_is_no_clear(tmp_path, monkeypatch):
    made_up_clears(monkeypatch, failed_confirmations={1})
    out = tmp_path / "table.md"
    assert main([*tiny_table_args(tmp_path, out), "--confirm"]) == 0
    row = json.loads(out.with_suffix(".json").read_text())["rows"]["1-1"]
    assert row["clears"] == 1 and row["cleared"] is False
    assert row["confirm"] == {"clears": 0, "played": 1}
    assert "| 1-1 | yes | no | 1/1 (0/1) |" in out.read_text()


def test_a_level_reopened_for_confirmation_confirms_its_checkpoint_before_training(
    tmp_path, monkeypatch
):
    """A level cleared by a table made without `--confirm`, its row removed and the recipe
    now confirming: its cleared checkpoint is checked again with a confirmation, and only a
    failed confirmation trains it on."""
    seeds_asked = made_up_clears(monkeypatch, failed_confirmations={1})
    out = tmp_path / "table.md"
    args = confirm_table_args(tmp_path, out)
    assert main(args) == 0
    state = json.loads(out.with_suffix(".json").read_text())
    (cleared_at,) = [check["frames"] for check in state["rows"]["1-1"]["checks"]]
    state["rows"] = {}
    state["recipe"]["confirm"] = True
    out.with_suffix(".json").write_text(json.dumps(state))
    seeds_asked.clear()
    assert main([*args, "--confirm"]) == 0
    row = json.loads(out.with_suffix(".json").read_text())["rows"]["1-1"]
    first, second = row["checks"]
    assert first["frames"] == cleared_at and first["confirm"]["clears"] == 0
    assert second["frames"] > cleared_at and row["cleared"] is True
    assert seeds_asked == [0, 5000, 0, 5000]


def test_a_level_run_begun_under_other_preset_settings_is_not_continued(tmp_path, monkeypatch):
    """The table resumes a level with the preset as the code defines it: a preset changed
    since the run began would have trained it on under another recipe, silently."""
    out = tmp_path / "table.md"
    # One piece, to the cap: the stop leaves its check to be made.
    args = [*tiny_table_args(tmp_path, out), "--frames", "250", "--check-every", "250"]
    args.remove("200"), args.remove("--frames")

    def stop_after_one_piece(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr("mario_rl.levels_table.evaluate_level", stop_after_one_piece)
        assert main(args) == 130
    (run,) = [path for path in (tmp_path / "runs" / "1-1").iterdir() if path.is_dir()]
    changed = replace(PRESETS["ppo-fast"], agent=replace(PRESETS["ppo-fast"].agent, gamma=0.5))
    monkeypatch.setitem(PRESETS, "ppo-fast", changed)
    with pytest.raises(ValueError, match=r"agent\.gamma 0\.9 there, 0\.5 now"):
        levels_table.build_table(["1-1"], 250, out, runs_dir=str(tmp_path / "runs"),
                                 episodes=1, max_stuck_steps=5, num_envs=2,
                                 check_every=250)  # fmt: skip
    dqn = replace(PRESETS["dqn-fast"], env=PRESETS["ppo-fast"].env)
    monkeypatch.setitem(PRESETS, "ppo-fast", dqn)  # another algorithm's fields altogether
    with pytest.raises(ValueError, match="was not trained by this recipe's algorithm"):
        levels_table.build_table(["1-1"], 250, out, runs_dir=str(tmp_path / "runs"),
                                 episodes=1, max_stuck_steps=5, num_envs=2,
                                 check_every=250)  # fmt: skip
    monkeypatch.undo()
    assert main(args) == 0  # the same settings continue it
    row = json.loads(out.with_suffix(".json").read_text())["rows"]["1-1"]
    assert row["run_dir"] == str(run)
