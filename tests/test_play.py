"""watch, play and race, headless (SDL_VIDEODRIVER=dummy, unthrottled), and one real screenshot.

The agent is a real checkpoint made by the DQN trainer on a 200-frame budget (an untrained
network). `data/1-1-finish.jsonl` is a person's input file that clears 1-1 in 1152 frames:
found by a depth-first search over 8-frame button segments with emulator snapshots, it
replays exactly because the emulator is deterministic.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygame
import pytest
import torch

from mario_rl.agents import load_policy
from mario_rl.bundled import MODELS_DIR_ENV, bundled_checkpoint, bundled_levels
from mario_rl.cli.main import main
from mario_rl.env.pipeline import EnvConfig
from mario_rl.leaderboard import DATA_DIR_ENV, Leaderboard, RunResult
from mario_rl.play import (
    WATCH_KEYS,
    DisplayError,
    InputEvent,
    InputFileError,
    InputRecorder,
    KeyboardInputs,
    QuitRequested,
    ScriptedInputs,
    Window,
    agent_run,
    ended_as,
    observe_frames,
    parse_key_bindings,
    play_level,
    race,
    race_winner,
    watch,
)

DATA = Path(__file__).parent / "data"
FINISH_1_1 = DATA / "1-1-finish.jsonl"
RUN_AND_JUMP = [
    {"format": "mario-rl-inputs/1", "level": "1-1"},
    {"frame": 0, "buttons": ["right", "B"]},
    {"frame": 60, "press": "A"},
    {"frame": 90, "release": ["A"]},
]


def write_inputs(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """As the window commands do: one observation per step is fastest on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def policy(untrained_dqn_run):
    return load_policy(untrained_dqn_run)


@pytest.fixture
def window():
    with Window("test", WATCH_KEYS, scale=1, fast=True) as window:
        yield window


def scripted(*events: tuple[int, str, tuple[str, ...]]) -> ScriptedInputs:
    return ScriptedInputs([InputEvent(frame, kind, frozenset(b)) for frame, kind, b in events])


# -- a person plays ------------------------------------------------------------------------


def test_play_with_a_scripted_input_file_moves_mario_right(tmp_path, window):
    inputs = ScriptedInputs.from_file(write_inputs(tmp_path / "keys.jsonl", RUN_AND_JUMP))
    result = play_level("1-1", inputs, window, max_frames=150)
    assert (result.outcome, result.frames) == ("stopped", 150)
    assert result.max_x > 250
    assert not result.finished


def test_running_into_the_first_goomba_is_a_death_without_a_time(window):
    result = play_level("1-1", scripted((0, "buttons", ("right",))), window)
    assert result.outcome == "died"
    assert 0 < result.frames < 400 and result.max_x > 200


def test_a_recorded_session_replays_exactly_and_keeps_its_quit(tmp_path, window):
    inputs = scripted(
        (0, "buttons", ("right", "B")),
        (60, "press", ("A",)),
        (90, "release", ("A",)),
        (120, "quit", ()),
    )
    recorder = InputRecorder(tmp_path / "session.jsonl", "1-1")
    first = play_level("1-1", inputs, window, recorder=recorder)
    recorder.close()
    assert (first.outcome, first.frames) == ("quit", 120)
    lines = [json.loads(line) for line in recorder.path.read_text().splitlines()]
    assert lines[0] == {"format": "mario-rl-inputs/1", "level": "1-1"}
    assert lines[1:] == [
        {"frame": 0, "buttons": ["right", "B"]},
        {"frame": 60, "buttons": ["right", "A", "B"]},
        {"frame": 90, "buttons": ["right", "B"]},
        {"frame": 120, "quit": True},
    ]
    assert play_level("1-1", ScriptedInputs.from_file(recorder.path), window) == first


def test_keyboard_inputs_come_from_the_window_keys(window):
    keys = parse_key_bindings("jump=space,run=left shift")
    inputs = KeyboardInputs(window, keys)
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RIGHT))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LSHIFT))
    moved = play_level("1-1", inputs, window, max_frames=60)
    assert moved.max_x > 100
    assert inputs.buttons(60) == {"right", "B"}
    pygame.event.post(pygame.event.Event(pygame.KEYUP, key=pygame.K_RIGHT))
    window.show(np.zeros((240, 256, 3), np.uint8), ["", ""])
    assert inputs.buttons(61) == {"B"}


def test_key_bindings_text_json_and_errors(tmp_path):
    keys = parse_key_bindings("jump=a, run=s")
    assert (keys["jump"], keys["run"], keys["left"]) == ("a", "s", "left")
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"jump": "k", "quit": "q"}))
    assert parse_key_bindings(str(path))["quit"] == "q"
    for text, message in [
        ("fly=a", "unknown control 'fly'"),
        ("jump=nosuchkey", "unknown key 'nosuchkey' for jump"),
        ("jump=z", "'z' is bound to both jump and run"),
        # pygame's key names ignore case: X is the x key, Left the left arrow.
        ("quit=X", "'X' is bound to both jump and quit"),
        ("run=Left", "'Left' is bound to both left and run"),
        ("jump", "expected control=key pairs"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_key_bindings(text)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: expected a JSON object"),
        ('{"frame": 3, "buttons": ["start"]}', "line 2: expected buttons from left, right"),
        ('{"frame": -1, "quit": true}', "line 2: expected a frame number >= 0"),
        ('{"frame": 5, "press": "A", "quit": true}', "line 2: expected exactly one of"),
        ('{"frame": 1, "quit": true}', "line 2: expected frame >= 4, got 1"),
        ('{"format": "other/9"}', "line 2: expected format mario-rl-inputs/1"),
        ('{"frame": 30, "quit": false}', 'line 2: expected "quit": true, got False'),
        ('{"format": "mario-rl-inputs/1"}', "line 2: the format line must be the first line"),
    ],
)
def test_a_malformed_input_file_names_the_line(tmp_path, line, message):
    path = tmp_path / "keys.jsonl"
    path.write_text('{"frame": 4, "buttons": ["right"]}\n' + line + "\n")
    with pytest.raises(InputFileError, match=message):
        ScriptedInputs.from_file(path)


def test_an_input_files_format_line_names_its_level_and_nothing_else(tmp_path):
    path = tmp_path / "keys.jsonl"
    path.write_text(
        '{"format": "mario-rl-inputs/1", "level": "1-1", "frame": 0, "buttons": ["right"]}\n'
    )
    with pytest.raises(InputFileError, match="line 1: expected a format line of format and"):
        ScriptedInputs.from_file(path)
    inputs = ScriptedInputs.from_file(write_inputs(tmp_path / "run.jsonl", RUN_AND_JUMP))
    assert inputs.level == "1-1"
    inputs.check_level("SuperMarioBros-1-1-v0")
    with pytest.raises(InputFileError, match="recorded on 1-1, not 4-1"):
        inputs.check_level("4-1")
    path.write_bytes(b'{"frame": 0, "buttons": ["right"]}\n\xff\n')
    with pytest.raises(InputFileError, match=f"{path}: expected UTF-8 JSON lines, got byte 0xff"):
        ScriptedInputs.from_file(path)


def test_a_warp_is_a_finish_and_a_castle_loop_a_run_cut_short():
    assert ended_as({"flag_get": True, "exit": "flag"}) == "finished"
    assert ended_as({"flag_get": False, "exit": "warp 4-1"}) == "finished"
    assert ended_as({"flag_get": False, "exit": "loop"}) == "stopped"
    assert ended_as({"flag_get": False}) == "died"


def test_closing_the_window_during_a_message_quits(window):
    window.fast = False
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    with pytest.raises(QuitRequested):
        window.message(["between the runs"], seconds=5.0)


def test_pause_step_and_speed_keys(window):
    frame = np.zeros((240, 256, 3), np.uint8)
    window.paused = True
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_PERIOD))
    window.show(frame, ["", ""])  # one frame while paused, then it returns
    assert window.paused
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE))
    window.show(frame, ["", ""])
    assert not window.paused
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_1))
    window.show(frame, ["", ""])
    assert not window.fast
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_2))
    window.show(frame, ["", ""])
    assert window.fast
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q))
    with pytest.raises(QuitRequested):
        window.show(frame, ["", ""])


# -- an agent plays ------------------------------------------------------------------------


def test_watch_shows_every_emulator_frame_of_every_episode(policy, window):
    shown: list[int] = []
    original = window.show
    window.show = lambda frame, lines: (shown.append(frame.std() > 0), original(frame, lines))
    results = watch(policy, window, episodes=2, max_frames=200)
    assert 1 <= len(results) <= 2
    assert sum(result.frames for result in results) <= 200 + policy.env_config.frame_skip
    assert len(shown) == sum(result.frames for result in results) + len(results)  # + resets
    assert all(shown)
    assert all(result.level == "1-1" and not result.finished for result in results)


def test_the_frame_observer_sits_right_on_the_emulator(policy):
    env = policy.make_env(policy.env_config)
    calls = []
    env = observe_frames(env, lambda action, info: calls.append(info["frames"]))
    env.reset(seed=0)
    env.step(1)
    assert calls == [0, 1, 2, 3, 4]  # a reset, then the 4 frames of one agent step
    env.close()


def test_agent_run_on_another_level_keeps_the_checkpoint_pipeline(policy, window):
    config = EnvConfig(**{**policy.env_config.to_dict(), "level": "1-2"})
    result = agent_run(policy, config, window, max_frames=40)
    assert result.level == "1-2" and result.outcome == "stopped" and result.frames >= 40


def test_an_agent_that_stalls_on_screen_stopped_even_if_it_trained_with_stalls_as_deaths(
    policy, window
):
    standing = dataclasses.replace(policy, greedy=lambda obs: np.zeros(len(obs), np.int64))
    config = dataclasses.replace(
        policy.env_config, no_progress_steps=3, no_progress_is_death=True, noop_max=0
    )
    result = agent_run(standing, config, window, max_frames=400)
    assert result.outcome == "stopped" and result.frames < 400


def test_a_sampling_agent_watched_twice_with_one_seed_plays_the_same(window):
    from mario_rl.bundled import bundled_checkpoint

    policy = load_policy(bundled_checkpoint("1-1"))
    policy.set_sampling(True)
    shown: list[list[str]] = [[], []]
    original = window.show
    for run in shown:
        window.show = lambda frame, lines, run=run: (run.append(lines[0]), original(frame, lines))
        agent_run(policy, policy.env_config, window, seed=3, max_frames=120)
    window.show = original
    assert len(shown[0]) > 100 and shown[0] == shown[1]


# -- the race ------------------------------------------------------------------------------


def test_race_person_finishes_agent_does_not_and_both_go_on_the_board(policy, window, tmp_path):
    board = Leaderboard(tmp_path / "board.sqlite3")
    outcome = race("1-1", "ann", policy, ScriptedInputs.from_file(FINISH_1_1), window, board=board)
    human, agent = outcome.human, outcome.agent
    assert (human.outcome, human.frames, human.max_x) == ("finished", 1152, 3161)
    assert 40 < human.game_time < 60  # the SMB clock ticks every 24 frames or so
    assert not agent.finished and outcome.winner == "human"
    entries = board.entries("1-1")
    assert [(e.name, e.kind, e.frames) for e in entries] == [
        ("ann", "human", 1152),
        (f"ddqn agent (checkpoints/{Path(policy.checkpoint_path).name})", "agent", None),
    ]


ESCAPE = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE)
PERSON_FINISH_SHOWS = 1153
"""Frames the window shows of FINISH_1_1: the start, then one per emulator frame."""


def post_before_show(window, monkeypatch, call: int, event) -> list[int]:
    """Post `event` just before the window's `call`-th frame (from 1); returns [shows]."""
    original, shows = window.show, [0]

    def show(frame, lines):
        shows[0] += 1
        if shows[0] == call:
            pygame.event.post(event)
        original(frame, lines)

    monkeypatch.setattr(window, "show", show)
    return shows


def test_a_quit_on_the_frame_that_reaches_the_flag_leaves_the_finish(window, monkeypatch):
    post_before_show(window, monkeypatch, PERSON_FINISH_SHOWS, ESCAPE)
    result = play_level("1-1", ScriptedInputs.from_file(FINISH_1_1), window)
    assert (result.outcome, result.frames) == ("finished", 1152)


def test_a_quit_on_the_persons_last_frame_keeps_the_finish_and_stops_the_race(
    policy, window, monkeypatch
):
    shows = post_before_show(window, monkeypatch, PERSON_FINISH_SHOWS, ESCAPE)
    outcome = race("1-1", "ann", policy, ScriptedInputs.from_file(FINISH_1_1), window)
    assert outcome.human.finished and (outcome.agent, outcome.winner) == (None, "stopped")
    assert shows == [PERSON_FINISH_SHOWS]  # none of the agent's


def test_watch_stops_after_a_quit_on_an_episodes_last_frame(policy, window, monkeypatch):
    first = post_before_show(window, monkeypatch, 0, ESCAPE)
    (alone,) = watch(policy, window, episodes=1, seed=3)
    assert alone.outcome in ("died", "finished", "stopped")
    monkeypatch.undo()
    post_before_show(window, monkeypatch, first[0], ESCAPE)  # that episode's last frame
    results = watch(policy, window, episodes=2, seed=3)
    assert [r.outcome for r in results] == [alone.outcome], "no second episode"


def test_a_quit_during_the_agents_run_stops_the_race_and_keeps_the_person_alone(
    policy, window, monkeypatch, tmp_path
):
    """Before, the agent's run was recorded as quit and a finished person won."""
    board = Leaderboard(tmp_path / "board.sqlite3")
    post_before_show(window, monkeypatch, PERSON_FINISH_SHOWS + 5, ESCAPE)
    outcome = race("1-1", "ann", policy, ScriptedInputs.from_file(FINISH_1_1), window, board=board)
    assert outcome.human.finished and outcome.agent is None and outcome.winner == "stopped"
    assert [(e.name, e.kind) for e in board.entries("1-1")] == [("ann", "human")]


def test_a_quit_during_the_persons_run_is_recorded_and_the_agent_does_not_play(
    policy, window, monkeypatch, tmp_path
):
    board = Leaderboard(tmp_path / "board.sqlite3")
    shows = post_before_show(window, monkeypatch, 0, ESCAPE)
    inputs = scripted((0, "buttons", ("right",)), (20, "quit", ()))
    outcome = race("1-1", "ann", policy, inputs, window, board=board)
    assert (outcome.human.outcome, outcome.agent, outcome.winner) == ("quit", None, "stopped")
    assert shows == [21]  # the person's frames 0..20, none of the agent's
    assert [(e.name, e.outcome) for e in board.entries("1-1")] == [("ann", "quit")]


def test_race_winner_is_the_faster_finish_and_never_an_unfinished_run():
    def run(outcome: str, frames: int = 1200, clock: int = 50) -> RunResult:
        return RunResult("1-1", outcome, frames, clock, 3161)

    assert race_winner(run("finished", 1100), run("finished", 1200)) == "human"
    assert race_winner(run("finished", 1300), run("finished", 1200)) == "agent"
    assert race_winner(run("finished", 1200, 50), run("finished", 1200, 49)) == "agent"
    assert race_winner(run("finished"), run("finished")) == "tie"
    assert race_winner(run("died", 10), run("finished", 5000)) == "agent"
    assert race_winner(run("quit", 10), run("stopped", 5)) == "nobody"
    assert race_winner(run("finished", 5000), run("died", 10)) == "human"


def test_race_needs_a_single_level(policy, window):
    with pytest.raises(ValueError, match="expected a single level"):
        race("full", "ann", policy, scripted(), window)


# -- the commands --------------------------------------------------------------------------


def test_race_command_records_both_runs(untrained_dqn_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    inputs = write_inputs(tmp_path / "keys.jsonl", RUN_AND_JUMP)
    args = ["race", "--name", "bob", "--agent", str(untrained_dqn_run), "--inputs", str(inputs)]
    assert main([*args, "--fast", "--scale", "1", "--max-frames", "100"]) == 0
    out = capsys.readouterr().out
    assert "bob: stopped at x" in out and "nobody finished" in out
    assert "0 finished, 2 not finished" in out
    assert (tmp_path / "data" / "leaderboard.sqlite3").is_file()


def test_race_names_are_shown_as_typed(untrained_dqn_run, tmp_path, monkeypatch, capsys):
    """Markup in a name is data: the race and every later listing print it literally."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    inputs = write_inputs(tmp_path / "keys.jsonl", RUN_AND_JUMP)
    name = "[/][bold]x\\"  # markup, and a backslash last
    args = ["race", "--name", name, "--agent", str(untrained_dqn_run), "--inputs", str(inputs)]
    assert main([*args, "--fast", "--scale", "1", "--max-frames", "40"]) == 0
    assert f"{name}: stopped at x" in capsys.readouterr().out
    assert main(["leaderboard", "--level", "1-1"]) == 0
    assert name in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("   ", "expected a racer's name, got an empty one"),
        ("a\nb", "expected printable characters only"),
        ("\x1b[31mred", "expected printable characters only"),
        ("x" * 33, "expected at most 32 characters, got 33"),
    ],
)
def test_a_bad_race_name_is_refused_before_anyone_plays(name, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["race", "--name", name, "--fast"])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_board_that_cannot_be_made_is_refused_before_anyone_plays(
    untrained_dqn_run, tmp_path, capsys
):
    (tmp_path / "afile").write_text("")
    inputs = write_inputs(tmp_path / "keys.jsonl", RUN_AND_JUMP)
    args = ["race", "--name", "bob", "--agent", str(untrained_dqn_run), "--inputs", str(inputs)]
    db = tmp_path / "afile" / "board.sqlite3"
    assert main([*args, "--db", str(db), "--fast", "--scale", "1", "--max-frames", "40"]) == 2
    captured = capsys.readouterr()
    assert "cannot make the folder" in captured.err and "stopped at x" not in captured.out


def test_a_checkpoint_path_with_brackets_loads(untrained_dqn_run, tmp_path):
    folder = tmp_path / "[/]x"
    shutil.copytree(untrained_dqn_run, folder)
    assert main(["watch", str(folder), "--fast", "--scale", "1", "--max-frames", "10"]) == 0


def test_inputs_recorded_on_another_level_are_refused(untrained_dqn_run, tmp_path, capsys):
    inputs = write_inputs(tmp_path / "keys.jsonl", RUN_AND_JUMP)
    args = ["play", "--level", "1-2", "--inputs", str(inputs), "--fast", "--scale", "1"]
    assert main(args) == 2
    assert "recorded on 1-1, not 1-2" in capsys.readouterr().err


def test_a_board_path_with_brackets_is_printed_as_it_is(tmp_path, capsys):
    db = tmp_path / "[/oops][red]board.sqlite3"
    assert main(["leaderboard", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "no runs on 1-1 yet in" in out and str(db) in "".join(out.split())


def test_a_huge_window_scale_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["watch", "1-1", "--scale", "100000"])
    assert "expected a scale of 1..8, got '100000'" in capsys.readouterr().err


def test_play_command_records_its_inputs(tmp_path, capsys):
    inputs = write_inputs(tmp_path / "keys.jsonl", RUN_AND_JUMP)
    saved = tmp_path / "saved.jsonl"
    args = ["play", "--inputs", str(inputs), "--record-inputs", str(saved), "--keys", "jump=a"]
    assert main([*args, "--fast", "--scale", "1", "--max-frames", "100"]) == 0
    assert "1-1: stopped at x" in capsys.readouterr().out
    assert json.loads(saved.read_text().splitlines()[1]) == {"frame": 0, "buttons": ["right", "B"]}


def test_watch_command_takes_a_checkpoint_or_a_bundled_level(
    untrained_dqn_run, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path / "models"))
    assert main(["watch", "1-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "mario-rl watch: error: no bundled agent for level 1-1 (bundled levels: none yet); "
        "pass a checkpoint or run directory instead"
    )
    checkpoint = next((untrained_dqn_run / "checkpoints").glob("*.pt"))
    (tmp_path / "models" / "1-1").mkdir(parents=True)
    shutil.copy(checkpoint, tmp_path / "models" / "1-1" / "model.pt")
    assert bundled_levels() == ["1-1"]
    assert bundled_checkpoint("SuperMarioBros-1-1-v0").name == "model.pt"
    fast = ["--fast", "--scale", "1", "--max-frames", "40"]
    assert main(["watch", "1-1", *fast]) == 0
    assert "episode 1 on 1-1: stopped" in capsys.readouterr().out
    assert main(["watch", str(checkpoint), "--level", "1-3", *fast]) == 0
    assert "episode 1 on 1-3" in capsys.readouterr().out
    assert main(["watch", "--level", "2-1"]) == 2
    assert "no bundled agent for level 2-1 (bundled levels: 1-1)" in capsys.readouterr().err
    assert main(["watch", "no-such-thing"]) == 2
    assert "no such file and not a level" in capsys.readouterr().err


@pytest.mark.skipif(
    bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")), reason="a display is here"
)
def test_without_a_display_the_window_says_what_to_do(monkeypatch):
    monkeypatch.delenv("SDL_VIDEODRIVER")
    with pytest.raises(DisplayError, match="set SDL_VIDEODRIVER=dummy to run without a window"):
        Window("test", WATCH_KEYS, scale=1)


# -- a real window ---------------------------------------------------------------------------

SHOW_AND_WAIT = """
import sys
from mario_rl.play import InputEvent, ScriptedInputs, Window, play_level
inputs = ScriptedInputs([InputEvent(0, "buttons", frozenset({"right", "B"}))])
with Window("screenshot", {}, scale=2, fast=True) as window:
    play_level("1-1", inputs, window, max_frames=90)
    print("shown", flush=True)
    sys.stdin.readline()
"""


def read_xwd(path: Path) -> np.ndarray:
    """An X window dump (Xvfb's -fbdir screen file) as an RGB array; 24/32-bit TrueColor."""
    data = path.read_bytes()
    fields = np.frombuffer(data[:100], ">u4")
    header_size, width, height = int(fields[0]), int(fields[4]), int(fields[5])
    byte_order, bits_per_pixel, bytes_per_line = int(fields[7]), int(fields[11]), int(fields[12])
    masks, colours = fields[14:17], int(fields[19])
    assert bits_per_pixel == 32, f"expected a 32-bit screen, got {bits_per_pixel}"
    start = header_size + 12 * colours
    rows = np.frombuffer(
        data, "<u4" if byte_order == 0 else ">u4", height * bytes_per_line // 4, start
    )
    pixels = rows.reshape(height, bytes_per_line // 4)[:, :width]
    shifts = [int(mask).bit_length() - 8 for mask in masks]
    return np.stack([(pixels >> shift) & 0xFF for shift in shifts], axis=-1).astype(np.uint8)


# CI sets MARIO_RL_REQUIRE_XVFB=1: there a missing Xvfb fails this test instead of skipping it.
REQUIRE_XVFB = os.environ.get("MARIO_RL_REQUIRE_XVFB") == "1"


@pytest.mark.skipif(
    shutil.which("Xvfb") is None and not REQUIRE_XVFB,
    reason="Xvfb is not installed (the real-window test; CI requires it)",
)
def test_screenshot_of_the_window_under_xvfb_is_the_game(tmp_path):
    assert shutil.which("Xvfb"), "MARIO_RL_REQUIRE_XVFB=1 but Xvfb is not installed"
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_end),
            "-screen",
            "0",
            "640x640x24",
            "-fbdir",
            str(tmp_path),
        ],
        pass_fds=(write_end,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as display_file:
            display = display_file.readline().strip()
        env = {**os.environ, "DISPLAY": f":{display}", "SDL_VIDEODRIVER": "x11"}
        child = subprocess.Popen(
            [sys.executable, "-c", SHOW_AND_WAIT],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout.readline().strip() == "shown"
            screen = read_xwd(tmp_path / "Xvfb_screen0")
        finally:
            child.communicate("\n", timeout=30)
        assert child.returncode == 0
    finally:
        server.terminate()
        server.wait(timeout=30)
    window = screen[: 240 * 2, : 256 * 2]
    assert window.std() > 20, "the window should not be blank"
    sky = np.all(window == (104, 136, 252), axis=-1).mean()
    assert sky > 0.4, f"expected the sky of 1-1 over most of the window, got {sky:.0%}"
