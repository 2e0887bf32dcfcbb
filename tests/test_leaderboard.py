"""The race leaderboard's storage: outcomes, ranking, where it lives, damaged files."""

import sqlite3
from pathlib import Path

import pytest

from mario_rl.cli.main import main
from mario_rl.leaderboard import (
    DATA_DIR_ENV,
    Leaderboard,
    LeaderboardError,
    RunResult,
    data_dir,
    default_db_path,
)


def result(outcome: str, frames: int = 1500, game_time: int = 62, level: str = "1-1") -> RunResult:
    return RunResult(
        level, outcome, frames, game_time, max_x=3161 if outcome == "finished" else 700
    )


@pytest.fixture
def board(tmp_path) -> Leaderboard:
    return Leaderboard(tmp_path / "board.sqlite3")


def test_finished_died_and_quit_runs_are_kept_but_only_a_finish_has_a_time(board):
    board.record("ann", "human", result("died", frames=400, game_time=17))
    board.record("ann", "human", result("finished", frames=1500, game_time=62))
    board.record("ann", "human", result("quit", frames=90, game_time=4))
    entries = board.entries("1-1")
    assert [e.outcome for e in entries] == ["finished", "quit", "died"]
    finished, *unfinished = entries
    assert (finished.frames, finished.game_time, finished.max_x) == (1500, 62, 3161)
    for entry in unfinished:
        assert entry.frames is None and entry.game_time is None
        assert entry.max_x == 700


def test_the_schema_refuses_a_time_for_an_unfinished_run(board):
    board.record("ann", "human", result("died"))
    with sqlite3.connect(board.path) as connection, pytest.raises(sqlite3.IntegrityError):
        connection.execute(
            "INSERT INTO runs (level, name, kind, outcome, frames, game_time, max_x, recorded) "
            "VALUES ('1-1', 'cheat', 'human', 'died', 100, 5, 10, 'now')"
        )


def test_two_racers_on_one_level_rank_by_frames_then_game_time(board):
    board.record("bob", "human", result("finished", frames=1600, game_time=66))
    board.record("ann", "human", result("finished", frames=1450, game_time=61))
    board.record(
        "ddqn agent (1-1/model.pt)", "agent", result("finished", frames=1450, game_time=60)
    )
    board.record("bob", "human", result("died", level="1-2"))
    assert [(e.name, e.frames) for e in board.entries("1-1")] == [
        ("ddqn agent (1-1/model.pt)", 1450),
        ("ann", 1450),
        ("bob", 1600),
    ]
    assert [e.kind for e in board.entries("1-1")] == ["agent", "human", "human"]
    assert [(e.name, e.outcome) for e in board.entries("1-2")] == [("bob", "died")]


def test_reading_a_missing_board_creates_nothing(tmp_path):
    board = Leaderboard(tmp_path / "none" / "board.sqlite3")
    assert board.entries("1-1") == []
    assert not board.path.parent.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a database, just some bytes " * 40, "is not a mario-rl leaderboard"),
        (None, "is an SQLite database of another program"),
    ],
    ids=["garbage", "foreign-sqlite"],
)
def test_a_damaged_or_foreign_file_is_a_clear_error_and_left_untouched(tmp_path, content, message):
    path = tmp_path / "board.sqlite3"
    if content is None:
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE notes (text TEXT)")
        connection.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    board = Leaderboard(path)
    for action in (
        lambda: board.entries("1-1"),
        lambda: board.record("ann", "human", result("quit")),
    ):
        with pytest.raises(LeaderboardError, match=message):
            action()
    assert path.read_bytes() == before


def test_leaderboard_command_on_a_corrupt_file_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "board.sqlite3"
    path.write_bytes(b"\x00garbage" * 100)
    assert main(["leaderboard", "--db", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "is not a mario-rl leaderboard" in err and "left as it is" in err
    assert path.read_bytes() == b"\x00garbage" * 100


def test_leaderboard_command_prints_the_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    Leaderboard().record("ann", "human", result("finished", frames=1502, game_time=63))
    Leaderboard().record("bob", "human", result("died"))
    assert main(["leaderboard", "--level", "1-1"]) == 0
    out = capsys.readouterr().out
    assert "ann" in out and "1502" in out and "24.99" in out
    assert "died at x 700" in out and "1 finished, 1 not finished" in out
    assert main(["leaderboard", "--level", "8-4"]) == 0
    assert "no runs on 8-4 yet" in capsys.readouterr().out


def test_the_data_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_dir() == tmp_path / ".local" / "share" / "mario-rl"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "mario-rl" / "leaderboard.sqlite3"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "mine"))
    assert data_dir() == Path(tmp_path / "mine")


def test_an_unknown_outcome_is_refused():
    with pytest.raises(ValueError, match="outcome: expected one of"):
        RunResult("1-1", "won", 10, 1, 40)


def test_names_stored_with_control_characters_are_printed_safely(board, capsys):
    """A board written by another program may hold anything; the listing stays one line a
    name."""
    board.record("ann", "human", result("finished"))
    with sqlite3.connect(board.path) as connection:
        connection.execute("UPDATE runs SET name = ?", ("evil\x1b[2J\nname",))
    assert main(["leaderboard", "--db", str(board.path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "evil\N{REPLACEMENT CHARACTER}[2J" in out


def test_a_directory_as_the_board_is_one_line(tmp_path, capsys):
    assert main(["leaderboard", "--db", str(tmp_path)]) == 2
    assert f"{tmp_path} is a directory: pass --db a file path" in capsys.readouterr().err


def test_a_locked_board_is_retried_then_reported_as_locked(board, monkeypatch):
    import mario_rl.leaderboard as leaderboard

    board.record("ann", "human", result("finished"))
    monkeypatch.setattr(leaderboard, "LOCK_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(board.path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(LeaderboardError, match="locked by another program"):
            board.record("bob", "human", result("died"))
    finally:
        holder.rollback()
        holder.close()
    assert [e.name for e in board.entries("1-1")] == ["ann"]


def test_a_read_only_board_keeps_the_race_result(board, monkeypatch):
    """A failed write costs the entries, not the race: the error names what was lost."""
    board.record("ann", "human", result("finished"))

    def read_only(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(Leaderboard, "_insert", read_only)
    with pytest.raises(LeaderboardError, match=r"could not record bob's run .*readonly"):
        board.record("bob", "human", result("died"))


def test_a_board_made_by_another_booth_meanwhile_is_used_not_refused(board):
    """Two booths starting on one new file: the one that waits for the other's schema uses
    it (before, it created the table again and failed, or saw a half-made board)."""
    import threading
    import time

    from mario_rl.leaderboard import _SCHEMA

    holder = sqlite3.connect(board.path, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    for statement in _SCHEMA:
        holder.execute(statement)

    def finish() -> None:
        time.sleep(0.5)
        holder.commit()

    other = threading.Thread(target=finish)
    other.start()
    try:
        board.record("ann", "human", result("finished"))  # waits for the other's commit
    finally:
        other.join()
        holder.close()
    assert [e.name for e in board.entries("1-1")] == ["ann"]


def test_a_damaged_page_is_one_line_and_the_race_is_not_lost(board, capsys):
    for frames in range(1200, 1205):
        board.record(f"p{frames}", "human", result("finished", frames))
    data = bytearray(board.path.read_bytes())
    page = sqlite3.connect(board.path).execute("PRAGMA page_size").fetchone()[0]
    data[2 * page : 3 * page] = b"\xab" * page  # the index's page
    board.path.write_bytes(bytes(data))
    with pytest.raises(LeaderboardError, match="could not be read"):
        board.entries("1-1")
    with pytest.raises(LeaderboardError, match="could not record ann's run"):
        board.record("ann", "human", result("died"))
    assert main(["leaderboard", "--db", str(board.path)]) == 2
    assert "could not be read" in capsys.readouterr().err


def test_an_agent_run_the_same_as_one_on_the_board_is_stored_once(board):
    agent = "ppo agent (1-1/model.pt)"
    for _ in range(3):
        board.record_runs([("ann", "human", result("died")), (agent, "agent", result("finished"))])
    board.record(agent, "agent", result("finished", frames=1499))
    entries = board.entries("1-1")
    assert [(e.name, e.frames) for e in entries] == [
        (agent, 1499),
        (agent, 1500),
        ("ann", None),
        ("ann", None),
        ("ann", None),
    ]


def test_an_agent_run_stored_by_another_booth_meanwhile_is_not_stored_again(board, monkeypatch):
    """The look for an identical agent run and the insert are one write transaction: before,
    a booth looked (finding none) while another held the lock to store the same run, then
    stored it too."""
    import threading

    agent = "ppo agent (1-1/model.pt)"
    board.record("ann", "human", result("died"))
    holder = sqlite3.connect(board.path, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    # The other booth's first statement that needs the write lock has started: it waits
    # there (before the fix, past its look for an identical run).
    waiting = threading.Event()
    connect = sqlite3.connect

    def traced_connect(*args, **kwargs):
        connection = connect(*args, **kwargs)

        def trace(statement: str) -> None:
            if statement.startswith(("BEGIN IMMEDIATE", "INSERT")):
                waiting.set()

        connection.set_trace_callback(trace)
        return connection

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    other = threading.Thread(target=board.record, args=(agent, "agent", result("finished")))
    other.start()
    assert waiting.wait(timeout=30)
    holder.execute(
        "INSERT INTO runs (level, name, kind, outcome, frames, game_time, max_x, recorded) "
        "VALUES ('1-1', ?, 'agent', 'finished', 1500, 62, 3161, '2026-12-05T00:00:00+00:00')",
        (agent,),
    )
    holder.commit()
    other.join()
    holder.close()
    assert [e.name for e in board.entries("1-1")] == [agent, "ann"]


def test_a_race_goes_on_the_board_whole_or_not_at_all(board, monkeypatch):
    calls = []
    original = Leaderboard._insert

    def second_fails(self, connection, name, kind, run):
        calls.append(name)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        original(self, connection, name, kind, run)

    monkeypatch.setattr(Leaderboard, "_insert", second_fails)
    with pytest.raises(LeaderboardError, match="could not record ann's and agent's run"):
        board.record_runs([("ann", "human", result("died")), ("agent", "agent", result("died"))])
    assert calls == ["ann", "agent"] and board.entries("1-1") == []


def test_a_board_that_cannot_be_made_is_reported_by_ensure(tmp_path):
    (tmp_path / "afile").write_text("")
    board = Leaderboard(tmp_path / "afile" / "board.sqlite3")
    with pytest.raises(LeaderboardError, match="cannot make the folder"):
        board.ensure()
    ensured = Leaderboard(tmp_path / "new" / "board.sqlite3")
    ensured.ensure()
    assert ensured.path.is_file() and ensured.entries("1-1") == []
