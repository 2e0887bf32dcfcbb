"""The race leaderboard: one SQLite file in the user's data directory.

Every run is stored, finished or not. A run that died, quit or was stopped keeps its
outcome and furthest x but never a time: `frames` and `game_time` are NULL unless the run
finished (a CHECK constraint enforces it). Finished runs rank by emulator frames, then by
game time, then by who got there first. An agent's run the same as one already on the board
(a greedy agent plays the race's start the same way every time) is stored once, so a
booth's board lists people, not copies of the agent.

The file is found at, in order: `--db PATH`; `$MARIO_RL_DATA_DIR/leaderboard.sqlite3`;
`$XDG_DATA_HOME/mario-rl/leaderboard.sqlite3`; `~/.local/share/mario-rl/leaderboard.sqlite3`.
A file that is not this leaderboard (not SQLite, or SQLite made by something else) gets a
one-line `LeaderboardError` and is never written to.
"""

from __future__ import annotations

import os
import sqlite3
import unicodedata
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DATA_DIR_ENV = "MARIO_RL_DATA_DIR"
"""Environment variable naming the data directory outright (tests use it)."""
DB_NAME = "leaderboard.sqlite3"
APPLICATION_ID = 0x4D52524C
"""SQLite `application_id` of our files ("MRRL"), so a foreign database is never reused."""
SCHEMA_VERSION = 1
OUTCOMES = ("finished", "died", "quit", "stopped")
"""How a run ends: at the flag (or out of the level by a warp pipe); by losing the life;
the person quit; cut short (a frame limit, a castle's loop, or an agent stuck without
progress)."""
KINDS = ("human", "agent")
NES_FPS = 60.0988
"""Frames per second of the NTSC NES: converts frame counts to seconds."""

_SCHEMA = (
    f"""CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    level TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN {KINDS!r}),
    outcome TEXT NOT NULL CHECK (outcome IN {OUTCOMES!r}),
    frames INTEGER CHECK ((frames IS NOT NULL) = (outcome = 'finished')),
    game_time INTEGER CHECK ((game_time IS NOT NULL) = (outcome = 'finished')),
    max_x INTEGER NOT NULL,
    recorded TEXT NOT NULL
)""",
    "CREATE INDEX runs_by_level ON runs (level, outcome, frames)",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
"""The statements that make a new board, run in one write transaction (`_create`)."""


LOCK_TIMEOUT_S = 5.0
"""Seconds a locked leaderboard is retried before giving up."""
MAX_NAME_LENGTH = 32
"""Longest racer's name kept: a leaderboard column, not a text field."""


def racer_name(text: str) -> str:
    """A racer's name as stored: stripped, 1..MAX_NAME_LENGTH printable characters.

    Names are data: control characters (newlines, terminal escapes) are refused, and
    markup such as `[bold]` is kept as typed and shown as typed (`shown_name`).
    """
    name = text.strip()
    if not name:
        raise ValueError("name: expected a racer's name, got an empty one")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"name: expected at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    if any(map(_is_control, name)):
        raise ValueError(f"name: expected printable characters only, got {name!r}")
    return name


def shown_name(name: str) -> str:
    """A stored name made safe to print: control characters (from a board written by
    hand or by an older version) become U+FFFD; markup is left to the caller to escape."""
    return "".join("\N{REPLACEMENT CHARACTER}" if _is_control(char) else char for char in name)


def _is_control(char: str) -> bool:
    """Control, format and line/paragraph separators: what moves a terminal's cursor."""
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


class LeaderboardError(ValueError):
    """A leaderboard file that cannot be used; the message says which and what to do."""


@dataclass(frozen=True)
class RunResult:
    """How one run of a level went, whoever played it."""

    level: str
    """Level name, e.g. `1-1`."""
    outcome: str
    """One of OUTCOMES."""
    frames: int
    """Emulator frames from the level's start to the end of the run (the flag, if finished)."""
    game_time: int
    """Units of the SMB clock used (its value at the start minus at the end)."""
    max_x: int
    """Furthest x position reached."""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome: expected one of {OUTCOMES}, got {self.outcome!r}")

    @property
    def finished(self) -> bool:
        return self.outcome == "finished"

    def describe(self) -> str:
        """One line: the time if finished, otherwise how it ended and how far it got."""
        if self.finished:
            return (
                f"finished in {self.frames} frames ({self.frames / NES_FPS:.2f} s), "
                f"{self.game_time} ticks of the game clock"
            )
        return f"{self.outcome} at x {self.max_x} (not finished, no time)"


@dataclass(frozen=True)
class Entry:
    """One stored run, as the leaderboard lists it."""

    name: str
    kind: str
    outcome: str
    frames: int | None
    game_time: int | None
    max_x: int
    recorded: str


def data_dir() -> Path:
    """Where mario-rl keeps user data: $MARIO_RL_DATA_DIR, else the XDG data directory."""
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "mario-rl"


def default_db_path() -> Path:
    return data_dir() / DB_NAME


class Leaderboard:
    """The runs stored in one SQLite file. Each call opens and closes its own connection."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        """A checked connection; None when the file does not exist and `create` is False."""
        if not self.path.exists() and not create:
            return None
        if self.path.is_dir():
            raise LeaderboardError(f"{self.path} is a directory: pass --db a file path")
        if create:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise LeaderboardError(
                    f"cannot make the folder {self.path.parent} for the leaderboard "
                    f"({error.strerror or error}): pass --db another file"
                ) from None
        try:
            # A board another process is writing is retried for LOCK_TIMEOUT_S seconds.
            connection = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S)
        except sqlite3.Error as error:
            raise LeaderboardError(f"cannot open {self.path} ({error})") from None
        try:
            self._check(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _check(self, connection: sqlite3.Connection) -> None:
        application_id, tables, version = self._header(connection)
        if application_id == 0 and tables == 0:
            self._create(connection)
            application_id, tables, version = self._header(connection)
        if application_id != APPLICATION_ID:
            raise LeaderboardError(
                f"{self.path} is an SQLite database of another program (application id "
                f"{application_id}); it was left as it is: pass --db another file"
            )
        if version != SCHEMA_VERSION:
            raise LeaderboardError(
                f"{self.path}: expected leaderboard schema {SCHEMA_VERSION}, got {version}; "
                "it was made by another version of mario-rl"
            )

    def _header(self, connection: sqlite3.Connection) -> tuple[int, int, int]:
        """The file's application id, number of schema objects and schema version."""
        try:
            application_id = connection.execute("PRAGMA application_id").fetchone()[0]
            tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            version = connection.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.OperationalError as error:
            raise LeaderboardError(
                f"{self.path} could not be read ({error}): locked by another program for "
                f"over {LOCK_TIMEOUT_S:g} s, or not readable; try again"
            ) from None
        except sqlite3.DatabaseError as error:
            raise LeaderboardError(
                f"{self.path} is not a mario-rl leaderboard ({error}); it was left as it is: "
                "move it away or pass --db another file"
            ) from None
        return application_id, tables, version

    def _create(self, connection: sqlite3.Connection) -> None:
        """Make the schema in an empty file, all of it or none: two booths starting on one
        new file at once would otherwise each see the other's half-made board."""
        try:
            # The write lock first, then look again: the other process may have made it.
            connection.execute("BEGIN IMMEDIATE")
            try:
                application_id, tables, _ = self._header(connection)
                if application_id == 0 and tables == 0:
                    for statement in _SCHEMA:
                        connection.execute(statement)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        except sqlite3.Error as error:
            raise LeaderboardError(
                f"cannot create a leaderboard in {self.path} ({error})"
            ) from None

    def ensure(self) -> None:
        """Open the board, making it if it does not exist: a file that cannot be used is
        reported before anyone plays, not after."""
        connection = self._connect(create=True)
        assert connection is not None
        connection.close()

    def record(self, name: str, kind: str, result: RunResult) -> None:
        """Store one run. Unfinished runs are stored without a time."""
        self.record_runs([(name, kind, result)])

    def record_runs(self, runs: list[tuple[str, str, RunResult]]) -> None:
        """Store (name, kind, result) runs in one transaction: all of them or, on an
        error, none (a race's two runs go on the board together)."""
        stored = []
        for name, kind, result in runs:
            if kind not in KINDS:
                raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
            # An agent's name is made here (its checkpoint's), a person's is typed.
            name = racer_name(name) if kind == "human" else shown_name(name.strip())
            if not name:
                raise ValueError("name: expected a racer's name, got an empty one")
            stored.append((name, kind, result))
        connection = self._connect(create=True)
        assert connection is not None
        try:
            with closing(connection), connection:
                # The write lock before `_insert` looks for an identical agent run: two
                # booths storing the same one at once would otherwise both find none.
                connection.execute("BEGIN IMMEDIATE")
                for name, kind, result in stored:
                    self._insert(connection, name, kind, result)
        except sqlite3.Error as error:
            names = " and ".join(f"{name}'s" for name, _, _ in stored)
            raise LeaderboardError(
                f"could not record {names} run in {self.path} ({error}); the board is unchanged"
            ) from None

    def _insert(
        self, connection: sqlite3.Connection, name: str, kind: str, result: RunResult
    ) -> None:
        values = (
            result.level,
            name,
            kind,
            result.outcome,
            result.frames if result.finished else None,
            result.game_time if result.finished else None,
            result.max_x,
        )
        if kind == "agent":
            same = connection.execute(
                "SELECT 1 FROM runs WHERE level = ? AND name = ? AND kind = ? AND outcome = ? "
                "AND frames IS ? AND game_time IS ? AND max_x = ?",
                values,
            ).fetchone()
            if same:
                return
        connection.execute(
            "INSERT INTO runs (level, name, kind, outcome, frames, game_time, max_x, "
            "recorded) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, datetime.now(UTC).isoformat(timespec="seconds")),
        )

    def entries(self, level: str) -> list[Entry]:
        """The level's runs: finished ones fastest first, then the others newest first."""
        connection = self._connect(create=False)
        if connection is None:
            return []
        try:
            with closing(connection):
                rows = connection.execute(
                    "SELECT name, kind, outcome, frames, game_time, max_x, recorded FROM runs "
                    "WHERE level = ? ORDER BY frames IS NULL, frames, game_time, "
                    "CASE WHEN frames IS NULL THEN -id ELSE id END",
                    (level,),
                ).fetchall()
        except sqlite3.Error as error:
            raise LeaderboardError(
                f"{self.path} could not be read ({error}); it was left as it is: move it away "
                "or pass --db another file"
            ) from None
        return [Entry(*row) for row in rows]
