"""Evaluation under sticky actions, the blind-replay control, and what the report says.

The shipped 1-1 agent is the policy here: it clears the deterministic game, so the
deterministic and sticky cases tell apart what the evaluation does, not what it learned.
"""

import json
import math
from pathlib import Path

import pytest

from mario_rl.agents import load_policy
from mario_rl.cli.main import main
from mario_rl.env.actions import action_set
from mario_rl.evaluate import (
    blind_replay,
    eval_env_config,
    evaluate,
    failure_counts,
    summary_line,
    trajectory_id,
    where_episodes_ended,
)

MODEL = Path(__file__).resolve().parents[1] / "models" / "1-1" / "model.pt"


@pytest.fixture(scope="module")
def deterministic_report() -> dict:
    """One episode of the deterministic game from the true start, with its control."""
    return evaluate(load_policy(MODEL), episodes=1, sticky=0.0, noop_max=0, control=True)


def test_sticky_actions_make_more_than_one_trajectory_on_1_1():
    policy = load_policy(MODEL)
    sticky = evaluate(policy, episodes=2, sticky=0.25, noop_max=0, seed=0)
    assert sticky["distinct_trajectories"] > 1
    # The deterministic game from one start is one trajectory, however often it is played.
    deterministic = evaluate(policy, episodes=2, sticky=0.0, noop_max=0, seed=0)
    assert deterministic["distinct_trajectories"] == 1


def test_a_deterministic_blind_replay_repeats_the_episode_it_replays(deterministic_report):
    """The control is scored by the same code: replayed on the same start without
    stickiness, the actions give the same episode, fingerprint and numbers included."""
    episode = deterministic_report["per_episode"][0]
    control = deterministic_report["control"]
    assert episode["cleared"] and control["clears"] == 1
    assert control["source_seed"] == episode["seed"]
    replayed = control["per_episode"][0]
    assert set(replayed) == set(episode)
    same = ("cleared", "max_x", "frames", "frames_to_clear", "noops", "trajectory", "score")
    assert {key: replayed[key] for key in same} == {key: episode[key] for key in same}
    # One action per 4-frame span; the last span ends at the flag.
    assert len(control["actions"]) == math.ceil(episode["frames"] / 4)


def test_a_blind_replay_under_sticky_actions_is_scored_per_episode(deterministic_report):
    policy = load_policy(MODEL)
    actions = deterministic_report["control"]["actions"]
    config = eval_env_config(policy.env_config, "1-1", 30, 250, sticky=0.25)
    control = blind_replay(policy, actions, config, episodes=3, seed=100)
    assert control["seeds"] == [100, 102] and control["episodes"] == 3
    assert [e["seed"] for e in control["per_episode"]] == [100, 101, 102]
    # One button sequence, played three ways by the sticky draws.
    assert control["distinct_trajectories"] > 1
    assert 0 <= control["clears"] <= 3 and control["mean_x"] > 0


def test_a_blind_replay_ends_when_its_actions_run_out(deterministic_report):
    policy = load_policy(MODEL)
    config = eval_env_config(policy.env_config, "1-1", 0, 250, sticky=0.0)
    actions = deterministic_report["control"]["actions"][:50]
    control = blind_replay(policy, actions, config, episodes=1, seed=0)
    episode = control["per_episode"][0]
    assert not episode["cleared"] and episode["frames"] == 50 * 4
    assert episode["return"] is None  # the env did not end it, so has no totals
    assert episode["ended"] == "replay ran out"
    assert 0 < episode["end_x"] == episode["max_x"] < 1000  # still running right, early on
    cleared = deterministic_report["per_episode"][0]
    assert (cleared["ended"], cleared["end_x"]) == ("cleared", cleared["max_x"])


def test_where_episodes_ended_counts_the_failures_per_band_by_how_they_ended():
    episodes = [
        {"cleared": True, "ended": "cleared", "end_x": 3161, "max_x": 3161, "stuck": False},
        {"cleared": False, "ended": "died", "end_x": 1300, "max_x": 1310, "stuck": False},
        {"cleared": False, "ended": "stuck", "end_x": 1279, "max_x": 1279, "stuck": True},
        {"cleared": False, "ended": "died", "end_x": 1280, "max_x": 1280, "stuck": False},
        # A report saved before episodes kept their end: the furthest x and the stuck flag.
        {"cleared": False, "max_x": 2500, "stuck": True},
    ]
    bands = where_episodes_ended({"per_episode": episodes}, band_px=128)
    # 1279 // 128 = 9 -> band 1152; 1280 and 1300 -> band 1280; 2500 -> band 2432.
    assert bands == {1152: {"stuck": 1}, 1280: {"died": 2}, 2432: {"stuck": 1}}
    assert list(bands) == [1152, 1280, 2432]
    with pytest.raises(ValueError, match="band_px: expected a positive number"):
        where_episodes_ended({"per_episode": episodes}, band_px=0)
    # x restarts in a pipe's area: such an ending is told apart from the main area's.
    below = {"cleared": False, "ended": "died", "end_x": 1300, "max_x": 2000, "stuck": False}
    episodes = [below | {"start_area": 257, "end_area": 514}, below | {"start_area": 257}]
    assert where_episodes_ended({"per_episode": episodes}) == {
        1280: {"died in another area": 1, "died": 1}
    }


def test_a_death_is_drawn_and_counted_by_how_the_life_was_lost():
    died = {"cleared": False, "ended": "died", "end_x": 1300, "max_x": 1300, "stuck": False}
    episodes = [
        died | {"death": "fell"},
        died | {"death": "fell", "end_x": 1400},
        died | {"death": "hit", "start_area": 257, "end_area": 514},
        died | {"death": "time"},
        died,  # a report from before episodes kept how the life was lost
        died | {"death": "squashed"},  # a cause this code does not know: a death all the same
        {"cleared": False, "ended": "stuck", "end_x": 1279, "max_x": 1279, "stuck": True},
        {"cleared": True, "ended": "cleared", "end_x": 3161, "max_x": 3161, "stuck": False},
    ]
    assert where_episodes_ended({"per_episode": episodes}) == {
        1152: {"stuck": 1},
        1280: {
            "died: fell": 2,
            "died: hit in another area": 1,
            "died: out of time": 1,
            "died": 2,
        },
    }
    assert failure_counts(episodes) == {
        "died: fell": 2, "died": 2, "died: hit": 1, "died: out of time": 1, "stuck": 1
    }  # fmt: skip


def test_an_evaluation_says_how_each_life_was_lost(deterministic_report):
    """Right alone, replayed blind, walks into 1-1's first goomba: a hit, in the episode,
    the report's counts and its summary."""
    policy = load_policy(MODEL)
    config = eval_env_config(policy.env_config, "1-1", 0, 250, sticky=0.0)
    right = action_set(policy.env_config.actions).index(("right",))
    control = blind_replay(policy, [right] * 200, config, episodes=1, seed=0)
    episode = control["per_episode"][0]
    assert (episode["ended"], episode["death"]) == ("died", "hit")
    assert control["failures"] == {"died: hit": 1}
    cleared = deterministic_report["per_episode"][0]
    assert cleared["death"] is None and deterministic_report["failures"] == {}
    report = {**deterministic_report, "clears": 0, "episodes": 1, "failures": {"died: hit": 1}}
    assert "the episodes that did not clear: 1 hit" in " ".join(summary_line(report).split())


def test_the_trajectory_fingerprint_reads_actions_and_positions():
    assert trajectory_id([1, 2], [10, 20]) == trajectory_id([1, 2], [10, 20])
    assert trajectory_id([1, 2], [10, 20]) != trajectory_id([1, 2], [10, 21])
    assert trajectory_id([1, 2], [10, 20]) != trajectory_id([1, 3], [10, 20])


def test_the_summary_says_the_conditions(deterministic_report):
    line = " ".join(summary_line(deterministic_report).split())
    assert "ppo (greedy) on 1-1, deterministic (no sticky actions), no-ops 0..0" in line
    assert "seeds 0..0: cleared 1/1 (100%), 1 distinct trajectories" in line
    assert "blind-replay control" in line and "cleared 1/1" in line
    sticky = {**deterministic_report, "sticky_probability": 0.25}
    assert "sticky 0.25, no-ops 0..0" in summary_line(sticky)


def test_eval_json_says_how_it_was_measured(tmp_path, capsys):
    out = tmp_path / "eval.json"
    death_map = tmp_path / "where.png"
    argv = ["eval", "1-1", "--episodes", "1", "--control", "--quiet", "--out", str(out)]
    assert main([*argv, "--death-map", str(death_map)]) == 0
    assert death_map.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(out.read_text())
    assert report["acting"] == "greedy" and report["sticky_probability"] == 0.25
    assert report["deterministic"] is False
    assert (report["noop_range"], report["seeds"], report["episodes"]) == ([0, 30], [0, 0], 1)
    assert report["distinct_trajectories"] == 1
    assert report["control"]["seeds"] == [1, 1]
    assert set(report["control"]) >= {"clears", "clear_rate", "actions", "source_seed"}
    printed = " ".join(capsys.readouterr().out.split())
    assert "sticky 0.25, no-ops 0..30" in printed and "blind-replay control" in printed


@pytest.mark.parametrize("value", ["1", "-0.1", "inf", "nan", "often"])
def test_sticky_must_be_a_probability_below_one(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "1-1", "--sticky", value])
    assert exit_.value.code == 2
    assert "expected a number in [0, 1)" in capsys.readouterr().err


def test_eval_env_config_rejects_what_the_wrappers_would():
    policy = load_policy(MODEL)
    with pytest.raises(ValueError, match=r"sticky: expected a probability in \[0, 1\)"):
        eval_env_config(policy.env_config, None, 30, 250, sticky=1.0)
    with pytest.raises(ValueError, match="noop_max: expected >= 0"):
        eval_env_config(policy.env_config, None, -5, 250)


def test_a_death_map_draws_endings_in_another_area_apart(tmp_path):
    from mario_rl.record import plot_death_map

    died = {"cleared": False, "ended": "died", "end_x": 1300, "max_x": 2000, "stuck": False}
    report = {
        "level": "1-2", "algo": "ppo", "acting": "greedy", "episodes": 3, "clears": 1,
        "sticky_probability": 0.25, "noop_max": 30, "max_x": 3161,
        "per_episode": [
            died | {"start_area": 257, "end_area": 514},
            died | {"start_area": 257, "end_area": 257},
            {"cleared": True, "ended": "cleared", "end_x": 3161, "max_x": 3161, "stuck": False},
        ],
    }  # fmt: skip
    out = plot_death_map(report, tmp_path / "map.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_death_map_needs_a_picture_file_name(capsys):
    assert main(["eval", "1-1", "--episodes", "1", "--death-map", "where.txt"]) == 2
    assert "--death-map: expected a file ending in .png, .svg, .pdf" in capsys.readouterr().err


def test_an_episode_depends_only_on_its_seed_when_the_policy_samples():
    """Each episode draws its actions from its own generator (`acting_rng`), so episode 1
    of an evaluation is the evaluation of its seed alone, whatever episode 0 drew."""
    policy = load_policy(MODEL)
    both = evaluate(policy, episodes=2, sample=True, epsilon=0.2, seed=7, max_stuck_steps=50)
    second = evaluate(policy, episodes=1, sample=True, epsilon=0.2, seed=8, max_stuck_steps=50)
    assert both["per_episode"][1] == second["per_episode"][0]


def test_worker_processes_give_the_report_one_process_gives(untrained_dqn_run):
    """Short episodes (the untrained agent stands about), each with its own random moves."""
    policy = load_policy(untrained_dqn_run)
    settings = dict(episodes=3, epsilon=0.5, seed=3, max_stuck_steps=10)
    alone = evaluate(policy, control=True, **settings)
    assert len({episode["trajectory"] for episode in alone["per_episode"]}) > 1
    side_by_side = evaluate(policy, control=True, workers=2, **settings)
    assert side_by_side["per_episode"] == alone["per_episode"]
    assert side_by_side["control"] == alone["control"]
    assert side_by_side["machine"] == alone["machine"]


def test_an_evaluation_can_stop_at_its_nth_failure(untrained_dqn_run):
    """The untrained agent fails every episode: asked for 6 and told to stop at the second
    failure, it plays the first two of the six, and says it stopped."""
    policy = load_policy(untrained_dqn_run)
    settings = dict(episodes=6, seed=5, max_stuck_steps=10, noop_max=30)
    stopped = evaluate(policy, stop_after_failures=2, **settings)
    full = evaluate(policy, **settings)
    assert stopped["episodes"] == 2 and stopped["clears"] == 0
    assert stopped["seeds"] == [5, 6]
    assert stopped["per_episode"] == full["per_episode"][:2]
    assert stopped["stopped_early"] == {"episodes_asked": 6, "after_failures": 2}
    assert "stopped after 2 failed episodes of the 6 asked" in summary_line(stopped)
    assert "stopped_early" not in full
    in_workers = evaluate(policy, stop_after_failures=2, workers=2, **settings)
    assert in_workers["per_episode"] == stopped["per_episode"]


def test_worker_processes_need_a_checkpoint_file():
    policy = load_policy(MODEL)
    policy.checkpoint_path = ""
    with pytest.raises(ValueError, match="load the policy from its checkpoint file"):
        evaluate(policy, episodes=2, workers=2)
    with pytest.raises(ValueError, match="workers: expected a positive number"):
        evaluate(policy, episodes=2, workers=0)


def test_a_worker_that_cannot_load_the_policy_fails_the_evaluation(tmp_path):
    """Not a hang: the worker's error is the first episode's, raised here."""
    from mario_rl.runs import CheckpointError

    policy = load_policy(MODEL)
    policy.checkpoint_path = str(tmp_path / "moved_away.pt")
    with pytest.raises(CheckpointError, match=r"moved_away\.pt"):
        evaluate(policy, episodes=2, workers=2)


def test_a_worker_that_dies_fails_the_evaluation_instead_of_hanging():
    """A worker process killed mid-episode (for memory, say) breaks the evaluation."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from mario_rl.evaluate import _close_executor, _results_in_order

    executor = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver"))
    try:
        with pytest.raises(BrokenProcessPool):
            list(_results_in_order(executor, os._exit, episodes=3, window=2))  # exits at once
    finally:
        _close_executor(executor)


def test_death_map_plots_a_saved_report(untrained_dqn_run, tmp_path, capsys):
    report = evaluate(load_policy(untrained_dqn_run), episodes=3, max_stuck_steps=10)
    saved = tmp_path / "check.json"
    saved.write_text(json.dumps(report))
    assert main(["death-map", str(saved), "--out", str(tmp_path / "map.png")]) == 0
    assert (tmp_path / "map.png").read_bytes().startswith(b"\x89PNG")
    assert "where 3 of 3 episodes ended" in " ".join(capsys.readouterr().out.split())
    # A bundle's control, under its report's conditions.
    bundle_report = str(MODEL.parent / "eval.json")
    assert main(["death-map", bundle_report, "--control", "--out", str(tmp_path / "c.png")]) == 0
    control = json.loads(Path(bundle_report).read_text())["control"]["per_episode"]
    failed = sum(not episode["cleared"] for episode in control)
    assert f"where {failed} of {len(control)} episodes" in " ".join(capsys.readouterr().out.split())
    # No control in this report, a file that is not a report, a picture it cannot write.
    picture = str(tmp_path / "m.png")
    unfit = tmp_path / "unfit.json"
    unfit.write_text(json.dumps({**report, "per_episode": [{"cleared": False, "max_x": 40}]}))
    for args, message in [
        ([str(saved), "--control", "--out", picture], "a blind-replay control"),
        ([str(tmp_path / "map.png"), "--out", picture], "not an evaluation report with episodes"),
        ([str(saved), "--out", str(tmp_path / "map.txt")], "expected a file ending in .png"),
        ([str(unfit), "--out", picture], "KeyError: 'per_episode[0].stuck'"),
    ]:
        assert main(["death-map", *args]) == 2
        assert message in " ".join(capsys.readouterr().err.split())


def test_a_castle_loop_ends_as_looped_and_every_ending_has_a_death_map_colour():
    from mario_rl.evaluate import MAP_ENDINGS, how_it_ended
    from mario_rl.record import ENDING_COLOURS

    assert how_it_ended(False, False, True, looped=True) == "looped"
    assert how_it_ended(False, True, True) == "stuck" and how_it_ended(False, False, True) == "died"
    assert set(MAP_ENDINGS) <= set(ENDING_COLOURS)


def test_a_report_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from mario_rl import evaluate as evaluate_module
    from mario_rl import runs

    path = evaluate_module.save_report({"clears": 1}, tmp_path / "checks" / "frames_5.json")
    assert json.loads(path.read_text()) == {"clears": 1}

    def killed(source, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        evaluate_module.save_report({"clears": 2, "per_episode": [1] * 1000}, path)
    assert json.loads(path.read_text()) == {"clears": 1}


def test_a_report_goes_through_a_link_rather_than_replacing_it(tmp_path):
    from mario_rl.evaluate import save_report

    target = tmp_path / "real" / "report.json"
    target.parent.mkdir()
    target.write_text("{}")
    link = tmp_path / "report.json"
    link.symlink_to(target)
    save_report({"clears": 3}, link)
    assert link.is_symlink()
    assert json.loads(target.read_text()) == {"clears": 3}
