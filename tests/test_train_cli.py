"""Smoke runs of `train`, `eval`, `record` and `compare` on Mario with tiny budgets."""

import json
from dataclasses import replace
from pathlib import Path

import imageio.v2 as imageio
import pytest
import torch

from mario_rl.agents.dqn import DQNLearner, epsilon_at
from mario_rl.cli.main import build_parser, main
from mario_rl.env.pipeline import make_env
from mario_rl.presets import PRESETS, get_preset


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    code = main(
        [
            "train", "--preset", "dqn-fast", "--level", "1-1", "--frames", "1200",
            "--burn-in", "40", "--learn-every", "32", "--replay-size", "2000",
            "--no-progress-steps", "10", "--checkpoint-every", "200", "--runs-dir", str(runs),
            "--seed", "3", "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    (found,) = runs.iterdir()
    return found


def test_train_writes_a_run_with_the_preset_and_checkpoints(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "dqn-fast" and config["agent"]["dueling"]
    assert config["agent"]["burn_in"] == 40 and config["env"]["actions"] == "right_only"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir())[-1].startswith("frames_")


def test_eval_prints_and_saves_the_clear_rate(run_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(
        ["eval", str(run_dir), "--episodes", "2", "--max-stuck-steps", "25", "--out", str(out),
         "--quiet"]
    )  # fmt: skip
    assert code == 0
    assert "cleared 0/2" in capsys.readouterr().out
    report = json.loads(out.read_text())
    for key in ("clear_rate", "mean_x", "max_x", "mean_frames_to_clear",
                "mean_game_time_to_clear", "mean_score"):  # fmt: skip
        assert key in report
    assert report["episodes"] == 2 and len(report["per_episode"]) == 2
    assert all(0 <= e["noops"] <= 30 for e in report["per_episode"])


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_record_writes_a_full_colour_video(run_dir, tmp_path, suffix):
    out = tmp_path / f"mario{suffix}"
    assert main(["record", str(run_dir), "--out", str(out), "--max-stuck-steps", "25"]) == 0
    frame = imageio.mimread(out)[0] if suffix == ".gif" else imageio.get_reader(out).get_data(0)
    assert frame.shape[:2] == (240, 256) and frame.shape[2] in (3, 4)


def test_compare_draws_a_png(run_dir, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert main(["compare", str(run_dir), str(run_dir), "--out", str(out), "--window", "2"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "dqn-fast: 2 run(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--frames", "0"], "expected a positive whole number of frames"),
        (["train", "--resume", "nowhere", "--lr", "0.1"], "--resume continues the run"),
        (["train", "--resume", "a", "--init-from", "b"], "expected one of them"),
        (["train", "--init-from", "nowhere", "--frames", "100"], "nowhere: no such run directory"),
        (["train", "--death-starts", "0.8", "--snapshot-starts", "0.5"], "expected at most 1"),
        (
            ["train", "--preset", "ppo-fast", "--death-start-spread", "2"],
            "death_start_spread: 2 spreads the death starts, which are off",
        ),
        (
            ["train", "--preset", "ppo-fast", "--terminal-next-obs", "next-start"],
            "--terminal-next-obs: only curiosity's ICM reads it",
        ),
        (["eval", "nowhere"], "nowhere: expected a checkpoint file, a run directory or a level"),
        (["record", "nowhere", "--out", "x.avi"], "no such file and not a level"),
        (
            ["train", "--preset", "dqn-fast", "--normalize-moves", "100", "--runs-dir", "/nowhere"],
            "normalize_moves: the DQN agents do not carry a measured normalisation",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_dqn_presets_differ_only_where_the_write_ups_do():
    blog, tutorial, tutorial_dqn = (
        get_preset(n) for n in ("blog-ddqn", "tutorial-ddqn", "tutorial-dqn")
    )
    # The PyTorch tutorial's DDQN is the TensorFlow blog's agent with a tenth of its burn-in.
    assert tutorial.agent == replace(blog.agent, burn_in=blog.agent.burn_in // 10)
    # The tutorial's DQN-vs-DDQN comparison: the same run but for the target.
    assert tutorial.agent.double and tutorial_dqn.env == tutorial.env
    assert tutorial_dqn.agent == replace(tutorial.agent, double=False)
    # The Keras blog holds epsilon at its start while it observes and learns nothing...
    keras = get_preset("keras-dqn").agent
    assert keras.epsilon_observe == keras.burn_in
    assert epsilon_at(keras.burn_in - 1, keras) == keras.epsilon_start
    assert epsilon_at(keras.burn_in + 1, keras) < keras.epsilon_start
    # ...and has no target network: it bootstraps from the online network itself.
    learner = DQNLearner((4, 84, 84), 3, keras, torch.device("cpu"))
    assert learner.target is learner.online
    assert set(PRESETS) >= {"blog-ddqn", "tutorial-ddqn", "tutorial-dqn", "keras-dqn", "dqn-fast"}
    with pytest.raises(ValueError, match="unknown preset 'x': expected one of blog-ddqn"):
        get_preset("x")


OUR_PRESETS = (
    "dqn-fast", "ppo-fast", "ppo-levels", "ppo-levels-icm", "ppo-levels-complex",
    "ppo-levels-stall", "ppo-levels-deep", "ppo-levels-explore", "ppo-levels-long",
    "ppo-levels-more", "ppo-levels-more-sticky", "ppo-levels-more-sharp", "ppo-levels-more-simple",
    "ppo-levels-more-long", "ppo-levels-hires",
)  # fmt: skip
HARDER_STICKY_IN_TRAINING = {"ppo-levels-more-sticky": 0.4}
"""Trials that train under more timing noise than evaluation has, never less."""


def test_death_start_spread_reaches_the_agent_and_is_refused_where_there_are_none(capsys):
    from mario_rl.cli.train import _agent_overrides

    args = build_parser().parse_args(
        ["train", "--preset", "ppo-levels", "--death-start-spread", "3"]
    )
    assert _agent_overrides(args, get_preset("ppo-levels").agent) == {"death_start_spread": 3}
    assert get_preset("ppo-levels-deep").agent == replace(
        get_preset("ppo-levels").agent, death_start_spread=4
    )
    assert main(["train", "--algo", "tabular", "--death-start-spread", "2", "--frames", "10"]) == 2
    assert (
        "got --death-start-spread; the CS229 agent has no such setting" in capsys.readouterr().err
    )


def test_the_entropy_floor_reaches_the_agent_and_is_refused_for_other_agents(capsys):
    from mario_rl.cli.train import _agent_overrides

    args = build_parser().parse_args(
        ["train", "--preset", "ppo-levels", "--entropy-floor", "0.3", "--entropy-floor-coef", "1"]
    )
    overrides = _agent_overrides(args, get_preset("ppo-levels").agent)
    assert overrides == {"entropy_floor": 0.3, "entropy_floor_coef": 1.0}
    assert get_preset("ppo-levels-explore").agent == replace(
        get_preset("ppo-levels").agent, entropy_floor=0.5, entropy_floor_coef=0.1
    )
    assert main(["train", "--preset", "dqn-fast", "--entropy-floor", "0.5", "--frames", "10"]) == 2
    assert "--entropy-floor" in capsys.readouterr().err


def test_the_sharpening_trial_is_the_column_of_more_frames_without_the_entropy_bonus():
    more, sharp = get_preset("ppo-levels-more"), get_preset("ppo-levels-more-sharp")
    assert sharp.env == more.env
    assert sharp.agent == replace(more.agent, entropy_coef=0.0)
    assert more.agent.entropy_coef > 0 and sharp.agent.entropy_coef_end is None


def test_the_long_horizon_preset_keeps_steady_progress_worth_what_it_was():
    levels, long = get_preset("ppo-levels").agent, get_preset("ppo-levels-long").agent
    assert long == replace(levels, gamma=0.99, reward_scale=0.01)
    # A steady progress reward r returns r x scale / (1 - gamma): the value targets keep
    # their scale while a fall 24 steps on weighs 0.79 instead of 0.08.
    assert long.reward_scale / (1 - long.gamma) == pytest.approx(
        levels.reward_scale / (1 - levels.gamma)
    )
    assert long.gamma**24 > 0.78 > 0.08 > levels.gamma**24


def test_the_longer_horizon_trial_is_the_column_of_more_frames_at_gamma_099():
    more, trial = get_preset("ppo-levels-more"), get_preset("ppo-levels-more-long")
    assert trial.env == more.env
    assert trial.agent == replace(more.agent, gamma=0.99, reward_scale=0.01)

    # Its description's claim: at about 11 pixels (reward 11) a step, as the bundles run,
    # three steps of waiting cost what a death risk of about 24% costs at gamma 0.9 and of
    # about 3% at 0.99. A death ends the episode (end on life loss) and pays its penalty.
    from mario_rl.env.core import DEATH_PENALTY

    assert more.env.end_on_life_loss and trial.env.end_on_life_loss

    def risk_worth_three_steps(agent):
        value = 11 * agent.reward_scale / (1 - agent.gamma)
        return value * (1 - agent.gamma**3) / (value - DEATH_PENALTY * agent.reward_scale)

    assert risk_worth_three_steps(more.agent) == pytest.approx(0.24, abs=0.01)
    assert risk_worth_three_steps(trial.agent) == pytest.approx(0.029, abs=0.001)


def test_the_hires_preset_changes_only_the_frame_size_and_its_torso_follows():
    from mario_rl.nets import build_torso

    levels, hires = get_preset("ppo-levels"), get_preset("ppo-levels-hires")
    assert hires.agent == levels.agent
    assert hires.env == replace(levels.env, resize=(84, 84))
    env = make_env(replace(hires.env, noop_max=0))
    try:
        obs, _ = env.reset(seed=0)
        obs, *_ = env.step(2)
    finally:
        env.close()
    assert obs.shape == (4, 84, 84)
    # The last-action strip grows with the frame (84 // 21 rows) and marks action 2 of 5,
    # columns 33-49 of 84, and nothing else.
    strip = obs[-1, :4]
    assert (strip[:, 33:50] == 255).all() and not strip[:, :33].any() and not strip[:, 50:].any()
    assert (obs[-1, 4] != 255).any()
    torso, _ = build_torso(hires.agent.network, obs.shape)
    # Four stride-2 layers leave 6x6 of 84 (3x3 of 42): four times the features, one torso.
    low_torso, _ = build_torso(levels.agent.network, (4, 42, 42))
    assert torso[1].in_features == 32 * 6 * 6 == 4 * low_torso[1].in_features


@pytest.mark.parametrize(
    ("flag", "value"), [("--stall-is-death", True), ("--no-stall-is-death", False), (None, None)]
)
def test_a_stall_ends_as_a_death_only_when_asked(flag, value):
    from mario_rl.cli.train import ENV_FLAGS, _given

    args = build_parser().parse_args(["train", "--preset", "ppo-levels", *filter(None, [flag])])
    assert _given(args, ENV_FLAGS).get("no_progress_is_death") is value


def test_a_stall_cannot_be_a_death_where_no_stall_is_cut(capsys):
    assert main(["train", "--preset", "blog-ddqn", "--stall-is-death", "--frames", "10"]) == 2
    assert "never cuts a stall (no_progress_steps 0)" in capsys.readouterr().err


def test_the_pipeline_ends_a_stall_as_its_config_says():
    config = replace(get_preset("ppo-levels-stall").env, no_progress_steps=3, noop_max=0)
    env = make_env(config)
    try:
        env.reset(seed=0)
        steps = [env.step(0) for _ in range(3)]  # standing still at the start
    finally:
        env.close()
    assert steps[-1][2:4] == (True, False) and steps[-1][4]["no_progress"]


@pytest.mark.parametrize("name", OUR_PRESETS)
def test_our_presets_train_under_the_starts_and_sticky_actions_eval_uses(name):
    # A memorised button sequence must not pay in training if evaluation would break it.
    env = get_preset(name).env
    eval_defaults = build_parser().parse_args(["eval", "some-run"])
    assert env.sticky_probability == HARDER_STICKY_IN_TRAINING.get(name, eval_defaults.sticky)
    assert env.sticky_probability >= eval_defaults.sticky > 0
    assert env.noop_max == eval_defaults.noop_max


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["agent"].update(bogus=1), "unknown agent field(s) bogus"),
        (lambda c: c.pop("env"), "expected a 'env' section, got None"),
    ],
)
def test_resume_of_an_edited_config_is_a_one_line_error(
    untrained_dqn_run, tmp_path, capsys, edit, message
):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(untrained_dqn_run, run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    edit(config)
    (run_dir / "config.json").write_text(json.dumps(config))
    code = main(["train", "--resume", str(run_dir), "--frames", "400", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_our_presets_train_under_evaluations_sticky_actions_the_write_ups_do_not():
    from mario_rl.evaluate import EVAL_STICKY

    for name, preset in PRESETS.items():
        expected = HARDER_STICKY_IN_TRAINING.get(name, EVAL_STICKY if name in OUR_PRESETS else 0.0)
        assert preset.env.sticky_probability == expected, name


def test_keep_copy_is_saved_with_the_run_and_may_start_on_a_resume(tmp_path, capsys):
    tiny = ["--algo", "random", "--level", "1-1", "--num-envs", "1", "--keep-checkpoints", "1"]
    tiny += ["--quiet"]
    runs, kept = tmp_path / "runs", tmp_path / "kept"
    assert main(["train", *tiny, "--frames", "400", "--runs-dir", str(runs)]) == 0
    (run_dir,) = runs.iterdir()
    assert not kept.exists()
    # A run started without a copy may start one when resumed; other run flags are refused.
    resume = ["train", "--resume", str(run_dir), "--frames", "800", "--quiet"]
    assert main([*resume, "--keep-checkpoints", "3"]) == 2
    assert "--resume continues the run with its own config.json" in capsys.readouterr().err
    assert main([*resume, "--keep-copy", str(kept)]) == 0
    (copy,) = kept.iterdir()
    assert [p.name for p in (copy / "checkpoints").iterdir()] == [newest(run_dir)]
    # From then on it is in config.json (the copy's too), so a plain resume refreshes it.
    for config in (run_dir / "config.json", copy / "config.json"):
        assert json.loads(config.read_text())["run"]["keep_copy"] == str(kept)
    assert main(["train", "--resume", str(run_dir), "--frames", "1200", "--quiet"]) == 0
    assert [p.name for p in (copy / "checkpoints").iterdir()] == [newest(run_dir)]
    assert newest(run_dir) != "frames_800.pt" and newest(run_dir).startswith("frames_12")
    # Given from the start, it is in config.json from the start.
    other_runs = tmp_path / "other"
    args = ["train", *tiny, "--frames", "400", "--runs-dir", str(other_runs)]
    assert main([*args, "--keep-copy", str(kept)]) == 0
    (other,) = other_runs.iterdir()
    assert json.loads((other / "config.json").read_text())["run"]["keep_copy"] == str(kept)
    assert [p.name for p in (kept / other.name / "checkpoints").iterdir()] == [newest(other)]


def newest(run_dir: Path) -> str:
    (newest_checkpoint,) = (run_dir / "checkpoints").iterdir()  # --keep-checkpoints 1
    return newest_checkpoint.name


def test_the_readmes_preset_table_has_one_row_per_preset():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("\n### Presets\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = [name for row in rows for name in row.split(" | ")[0].strip("| ").split(", ")]
    assert sorted(name.strip("`") for name in documented) == sorted(PRESETS)
