"""Watch an agent, play a level yourself, and race an agent: the window and its loops.

- `watch`: an agent acts through the pipeline its checkpoint describes (frame skip, stack,
  ...), while the window shows every emulator frame in full colour, with the buttons the
  agent holds, x and the game clock. Keys: 1 real time, 2 fast, space pause, period one
  frame while paused, q or Esc quit.
- `play_level`: a person plays at one emulator frame per step, 60 frames/s, from the
  keyboard (`KeyboardInputs`) or from a recorded input file (`ScriptedInputs`).
- `race`: the person plays, then the agent plays the same level from the same start (no
  no-op frames, no sticky actions); the faster finish wins, in emulator frames. A quit (the
  quit key, or closing the window) stops the race: during the person's run the agent does
  not play, and during the agent's its run is not recorded; either way nobody wins.

The window works headless with `SDL_VIDEODRIVER=dummy`; `fast=True` drops the 60 frames/s
pacing, so tests and replays run at emulator speed.

Input files (`--inputs`, `--record-inputs`) are JSON lines, one object per line. `frame` is
the emulator frame the line applies from (0 is the first frame after the level starts),
never decreasing from line to line; each line holds exactly one of:

    {"frame": 0, "buttons": ["right", "B"]}   hold exactly these buttons from this frame on
    {"frame": 30, "press": ["A"]}             press these buttons too (a key-down event)
    {"frame": 45, "release": "A"}             let these go (a key-up event)
    {"frame": 900, "quit": true}              the person quits here

Buttons are the NES names `left`, `right`, `up`, `down`, `A` (jump) and `B` (run/fire).
Buttons stay held until a later line changes them. An optional first line
`{"format": "mario-rl-inputs/1", "level": "1-1"}` names the format and the level played
(a file recorded on another level is refused); `--record-inputs` writes it, then one
`buttons` line per change of the held buttons, and `quit` if the person quit. The emulator
is deterministic, so a recorded file replays the run exactly.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import gymnasium as gym
import numpy as np

from mario_rl.env.actions import BUTTON_BITS
from mario_rl.env.core import MarioEnv
from mario_rl.env.levels import parse_level
from mario_rl.env.pipeline import EnvConfig
from mario_rl.leaderboard import NES_FPS, Leaderboard, LeaderboardError, RunResult

# Imported after the variable that silences pygame's import banner.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame

if TYPE_CHECKING:
    from mario_rl.agents import Policy

NES_WIDTH, NES_HEIGHT = 256, 240
PLAYER_BUTTONS = ("left", "right", "up", "down", "A", "B")
"""The NES buttons a person plays with (start and select are left out)."""
CONTROLLER_ACTIONS: list[tuple[str, ...]] = [
    tuple(name for name, bit in BUTTON_BITS.items() if bit & byte) or ("NOOP",)
    for byte in range(256)
]
"""Every controller byte as an action, so that action index == controller byte."""
CONTROL_BUTTONS = {
    "left": "left",
    "right": "right",
    "up": "up",
    "down": "down",
    "jump": "A",
    "run": "B",
}
"""Keyboard controls that press an NES button, and the button each one presses."""
DEFAULT_KEYS = {
    "left": "left",
    "right": "right",
    "up": "up",
    "down": "down",
    "jump": "x",
    "run": "z",
    "pause": "p",
    "quit": "escape",
}
"""Default key (pygame key name) of each control in `play` and `race`."""
WATCH_KEYS = {
    "1": "real_time",
    "2": "fast",
    "space": "pause",
    ".": "step",
    "q": "quit",
    "escape": "quit",
}
WATCH_HELP = "1 real time   2 fast   space pause   . one frame   q quit"
SDL_DRIVER_ENV = "SDL_VIDEODRIVER"
HEADLESS_DRIVERS = ("dummy", "offscreen")
"""SDL video drivers without a visible window: used only when asked for by name."""
INPUTS_FORMAT = "mario-rl-inputs/1"
MAX_LAG_SECONDS = 0.25
"""Real-time pacing gives up catching up when it falls this far behind."""
PAUSE_POLL_MS = 50
MESSAGE_SECONDS = 2.0
"""How long the messages between race runs stay up (none when fast)."""
BACKGROUND = (16, 16, 24)
TEXT_COLOUR = (235, 235, 235)


class QuitRequested(Exception):
    """The person asked to quit: a quit key, or closing the window."""


class DisplayError(ValueError):
    """No window can be opened here; the message says what to do."""


class InputFileError(ValueError):
    """A malformed input file; the message names the file and line."""


# -- key bindings ------------------------------------------------------------------------------


def parse_key_bindings(text: str | None) -> dict[str, str]:
    """Controls -> pygame key names: DEFAULT_KEYS, changed by `jump=x,run=z` or a JSON file."""
    keys = dict(DEFAULT_KEYS)
    if text:
        path = Path(text)
        if path.suffix == ".json" or path.is_file():
            try:
                changes = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise ValueError(f"--keys {text}: expected a JSON object file ({error})") from None
            if not isinstance(changes, dict):
                raise ValueError(f"--keys {text}: expected a JSON object, got {changes!r}")
        else:
            pairs = [item.partition("=") for item in text.split(",") if item.strip()]
            if any(not sep for _, sep, _ in pairs):
                raise ValueError(f"--keys: expected control=key pairs like jump=x, got {text!r}")
            changes = {control.strip(): key.strip() for control, _, key in pairs}
        for control, key in changes.items():
            if control not in DEFAULT_KEYS:
                raise ValueError(
                    f"--keys: unknown control {control!r}: expected one of {', '.join(keys)}"
                )
            keys[control] = str(key)
    pygame.display.init()
    for control, key in keys.items():
        try:
            pygame.key.key_code(key)
        except ValueError:
            raise ValueError(
                f"--keys: unknown key {key!r} for {control}: expected a pygame key name such "
                "as x, space, left shift, return"
            ) from None
    # By key code: pygame's names ignore case, so "X" is the x key.
    taken: dict[int, str] = {}
    for control, key in keys.items():
        code = pygame.key.key_code(key)
        if code in taken:
            raise ValueError(f"--keys: {key!r} is bound to both {taken[code]} and {control}")
        taken[code] = control
    return keys


def describe_keys(keys: dict[str, str]) -> str:
    return "   ".join(f"{control}: {key}" for control, key in keys.items())


# -- the window --------------------------------------------------------------------------------


class Window:
    """The NES screen scaled up, with a text bar under it; speed, pause and quit keys.

    `controls` maps pygame key names to commands: real_time, fast, pause, step, quit. Keys
    not in it are tracked in `held` (the keyboard player's buttons).
    """

    def __init__(
        self, title: str, controls: dict[str, str], scale: int = 3, fast: bool = False
    ) -> None:
        if scale < 1:
            raise ValueError(f"scale: expected a positive integer, got {scale}")
        pygame.display.init()
        if pygame.display.get_driver() in HEADLESS_DRIVERS and not os.environ.get(SDL_DRIVER_ENV):
            pygame.display.quit()
            raise DisplayError(
                "no display found to open a window on: run it in a desktop session, or set "
                f"{SDL_DRIVER_ENV}=dummy to run without a window on purpose"
            )
        pygame.font.init()
        self.font = pygame.font.Font(None, max(18, 8 * scale))
        line = self.font.get_linesize()
        self.frame_size = (NES_WIDTH * scale, NES_HEIGHT * scale)
        size = (self.frame_size[0], self.frame_size[1] + 2 * line + 12)
        try:
            self.screen = pygame.display.set_mode(size)
        except pygame.error as error:
            raise DisplayError(
                f"cannot open a window ({error}): run it in a desktop session, or set "
                f"{SDL_DRIVER_ENV}=dummy to run without one"
            ) from None
        pygame.display.set_caption(title)
        self.controls = {pygame.key.key_code(key): command for key, command in controls.items()}
        self.fast = fast
        self.paused = False
        self.quit_requested = False
        """Whether a quit was asked for (key or window): a run that ended on the same frame
        keeps its outcome, and `watch` and `race` read this to stop after it."""
        self.held: set[int] = set()
        self._step_once = False
        self._nes = pygame.Surface((NES_WIDTH, NES_HEIGHT), 0, self.screen)
        self._view = self.screen.subsurface(pygame.Rect((0, 0), self.frame_size))
        self._lines: list[str] = []
        self._next_frame = time.perf_counter()

    def __enter__(self) -> Window:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        pygame.display.quit()

    def show(self, frame: np.ndarray, lines: list[str]) -> None:
        """Draw one 240x256x3 frame and the bar, wait while paused, then pace to 60 frames/s."""
        self._handle(pygame.event.get())
        pygame.surfarray.blit_array(self._nes, frame.swapaxes(0, 1))
        pygame.transform.scale(self._nes, self.frame_size, self._view)
        self._lines = lines
        self._draw_bar()
        while self.paused and not self._step_once:
            if self._handle([pygame.event.wait(PAUSE_POLL_MS)]):
                self._draw_bar()
        self._step_once = False
        self._pace()

    def message(self, lines: list[str], seconds: float = MESSAGE_SECONDS) -> None:
        """Text over the last frame for `seconds` (not at all when fast); any key skips it,
        closing the window raises QuitRequested."""
        shade = pygame.Surface(self.frame_size, pygame.SRCALPHA)
        shade.fill((0, 0, 0, 170))
        self._view.blit(shade, (0, 0))
        line = self.font.get_linesize()
        top = (self.frame_size[1] - line * len(lines)) // 2
        for text in lines:
            image = self.font.render(text, True, TEXT_COLOUR)
            self._view.blit(image, ((self.frame_size[0] - image.get_width()) // 2, top))
            top += line
        pygame.display.flip()
        deadline = time.perf_counter() + (0.0 if self.fast else seconds)
        while (left := deadline - time.perf_counter()) > 0:
            event = pygame.event.wait(max(1, min(PAUSE_POLL_MS, int(left * 1000))))
            if event.type == pygame.QUIT:
                self._quit()
            if event.type == pygame.KEYDOWN:
                break
        self.held.clear()
        self._next_frame = time.perf_counter()

    def _handle(self, events: Iterable[pygame.event.Event]) -> bool:
        """Apply key and window events; True if one changed the speed or pause state."""
        changed = False
        for event in events:
            if event.type == pygame.QUIT:
                self._quit()
            if event.type == pygame.KEYUP:
                self.held.discard(event.key)
            elif event.type == pygame.KEYDOWN:
                command = self.controls.get(event.key)
                if command is None:
                    self.held.add(event.key)
                else:
                    self._command(command)
                    changed = True
        return changed

    def _quit(self) -> None:
        self.quit_requested = True
        raise QuitRequested

    def _command(self, command: str) -> None:
        if command == "quit":
            self._quit()
        if command == "pause":
            self.paused = not self.paused
        elif command == "step":
            self._step_once = self.paused
        elif command in ("real_time", "fast"):
            self.fast = command == "fast"
        else:
            raise ValueError(f"unknown window command {command!r}")
        self._next_frame = time.perf_counter()

    def _draw_bar(self) -> None:
        state = "PAUSED" if self.paused else "fast" if self.fast else "60 fps"
        self.screen.fill(BACKGROUND, pygame.Rect(0, self.frame_size[1], *self.screen.get_size()))
        line = self.font.get_linesize()
        top = self.frame_size[1] + 6
        for text in self._lines:
            self.screen.blit(self.font.render(text, True, TEXT_COLOUR), (8, top))
            top += line
        image = self.font.render(state, True, TEXT_COLOUR)
        self.screen.blit(image, (self.frame_size[0] - image.get_width() - 8, top - line))
        pygame.display.flip()

    def _pace(self) -> None:
        if self.fast:
            return
        self._next_frame += 1.0 / NES_FPS
        delay = self._next_frame - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -MAX_LAG_SECONDS:
            self._next_frame = time.perf_counter()


# -- a person's inputs -------------------------------------------------------------------------


class Inputs(Protocol):
    """Where a person's buttons come from, frame by frame."""

    def buttons(self, frame: int) -> frozenset[str]:
        """The buttons held for emulator frame `frame`; raises QuitRequested to quit."""
        ...


class KeyboardInputs:
    """The buttons whose keys are held in the window."""

    def __init__(self, window: Window, keys: dict[str, str]) -> None:
        self.window = window
        self.codes = {
            pygame.key.key_code(keys[control]): button
            for control, button in CONTROL_BUTTONS.items()
        }

    def buttons(self, frame: int) -> frozenset[str]:
        return frozenset(button for code, button in self.codes.items() if code in self.window.held)


@dataclass(frozen=True)
class InputEvent:
    """One line of an input file."""

    frame: int
    kind: str
    """buttons, press, release or quit."""
    buttons: frozenset[str]


class ScriptedInputs:
    """A recorded or hand-written input file, replayed frame by frame."""

    def __init__(self, events: list[InputEvent], level: str | None = None) -> None:
        self.events = events
        self.level = level
        """The level its format line names (the one it was recorded on), if any."""
        self._next = 0
        self._held: frozenset[str] = frozenset()

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedInputs:
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise InputFileError(f"--inputs {path}: cannot read it ({error.strerror})") from None
        except UnicodeDecodeError as error:
            raise InputFileError(
                f"--inputs {path}: expected UTF-8 JSON lines, got byte "
                f"{error.object[error.start]:#x} at offset {error.start}"
            ) from None
        events: list[InputEvent] = []
        level = None
        first = True
        for number, line in enumerate(lines, 1):
            if line.strip():
                where = f"{path} line {number}"
                event = _parse_input_line(line, where)
                if isinstance(event, InputsHeader):
                    if not first:
                        raise InputFileError(f"{where}: the format line must be the first line")
                    level = event.level
                    first = False
                    continue
                first = False
                if events and event.frame < events[-1].frame:
                    raise InputFileError(
                        f"{path} line {number}: expected frame >= {events[-1].frame}, "
                        f"got {event.frame}"
                    )
                events.append(event)
        return cls(events, level)

    def check_level(self, level: str) -> None:
        """Refuse to replay on `level` a file recorded on another level."""
        if self.level is not None and parse_level(self.level).name != parse_level(level).name:
            raise InputFileError(
                f"--inputs: the file was recorded on {self.level}, not {level}: pass "
                f"--level {self.level}, or another file"
            )

    def buttons(self, frame: int) -> frozenset[str]:
        while self._next < len(self.events) and self.events[self._next].frame <= frame:
            event = self.events[self._next]
            self._next += 1
            if event.kind == "quit":
                raise QuitRequested
            if event.kind == "buttons":
                self._held = event.buttons
            elif event.kind == "press":
                self._held = self._held | event.buttons
            else:
                self._held = self._held - event.buttons
        return self._held


@dataclass(frozen=True)
class InputsHeader:
    """An input file's format line."""

    level: str | None


def _parse_input_line(line: str, where: str) -> InputEvent | InputsHeader:
    """One input-file line: an event, or the format line."""
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputFileError(f"{where}: expected a JSON object, got {line!r} ({error})") from None
    if not isinstance(record, dict):
        raise InputFileError(f"{where}: expected a JSON object, got {line!r}")
    if "format" in record:
        if record["format"] != INPUTS_FORMAT:
            raise InputFileError(
                f"{where}: expected format {INPUTS_FORMAT}, got {record['format']!r}"
            )
        if set(record) - {"format", "level"}:
            raise InputFileError(
                f"{where}: expected a format line of format and level only, got {sorted(record)}"
            )
        level = record.get("level")
        if level is not None:
            if not isinstance(level, str):
                raise InputFileError(f"{where}: expected a level name, got {level!r}")
            try:
                parse_level(level)
            except ValueError as error:
                raise InputFileError(f"{where}: {error}") from None
        return InputsHeader(level)
    frame = record.get("frame")
    if not isinstance(frame, int) or isinstance(frame, bool) or frame < 0:
        raise InputFileError(f"{where}: expected a frame number >= 0, got {frame!r}")
    kinds = [kind for kind in ("buttons", "press", "release", "quit") if kind in record]
    if len(kinds) != 1:
        raise InputFileError(
            f"{where}: expected exactly one of buttons, press, release, quit; got {sorted(record)}"
        )
    kind = kinds[0]
    if kind == "quit":
        if record["quit"] is not True:
            raise InputFileError(f'{where}: expected "quit": true, got {record["quit"]!r}')
        return InputEvent(frame, kind, frozenset())
    value = record[kind]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or any(name not in PLAYER_BUTTONS for name in names):
        raise InputFileError(
            f"{where}: expected buttons from {', '.join(PLAYER_BUTTONS)}, got {value!r}"
        )
    return InputEvent(frame, kind, frozenset(names))


class InputRecorder:
    """Writes a session as an input file: a header, each change of the held buttons, a quit."""

    def __init__(self, path: str | Path, level: str) -> None:
        self.path = Path(path)
        self._file: TextIO = self.path.open("w")
        self._last: frozenset[str] = frozenset()
        self._write({"format": INPUTS_FORMAT, "level": level})

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")

    def frame(self, frame: int, buttons: frozenset[str]) -> None:
        if buttons != self._last:
            self._write({"frame": frame, "buttons": [b for b in PLAYER_BUTTONS if b in buttons]})
            self._last = buttons

    def quit(self, frame: int) -> None:
        self._write({"frame": frame, "quit": True})

    def close(self) -> None:
        self._file.close()


# -- a person plays ----------------------------------------------------------------------------


def _buttons_text(buttons: Iterable[str]) -> str:
    return "+".join(buttons) or "none"


def ended_as(info: dict[str, Any]) -> str:
    """The outcome of a run whose last frame ended it: the flag or a warp pipe out of the
    level is a finish (as evaluation counts it), a castle's loop cuts it short, anything
    else is a death."""
    exit_taken = info.get("exit") or ""
    if info["flag_get"] or exit_taken.startswith("warp"):
        return "finished"
    return "stopped" if exit_taken == "loop" else "died"


def play_level(
    level: str,
    inputs: Inputs,
    window: Window,
    *,
    help_line: str = "",
    max_frames: int | None = None,
    recorder: InputRecorder | None = None,
) -> RunResult:
    """A person plays `level` from its start, one emulator frame per step."""
    env = MarioEnv(level, CONTROLLER_ACTIONS, obs_type="rgb")
    try:
        frame, info = env.reset()
        start_time, max_x = info["time"], info["x_pos"]
        outcome, terminated = "stopped", False
        buttons: frozenset[str] = frozenset()
        try:
            while True:
                status = (
                    f"{level}   buttons {_buttons_text(b for b in PLAYER_BUTTONS if b in buttons)}"
                    f"   x {info['x_pos']}   time {info['time']}   frame {env.frames}"
                )
                try:
                    window.show(frame, [status, help_line])
                except QuitRequested:
                    # A quit on the frame that ended the run changes nothing: the run
                    # (and its recording's replay) ended there.
                    if not terminated:
                        raise
                if terminated:
                    outcome = ended_as(info)
                    break
                if max_frames is not None and env.frames >= max_frames:
                    break
                buttons = inputs.buttons(env.frames)
                if recorder is not None:
                    recorder.frame(env.frames, buttons)
                byte = sum(BUTTON_BITS[button] for button in buttons)
                frame, _, terminated, _, info = env.step(byte)
                max_x = max(max_x, info["x_pos"])
        except QuitRequested:
            outcome = "quit"
            if recorder is not None:
                recorder.quit(env.frames)
        return RunResult(env.level.name, outcome, env.frames, start_time - info["time"], max_x)
    finally:
        env.close()


# -- an agent plays ----------------------------------------------------------------------------


class FrameObserver(gym.Wrapper):
    """Calls `on_frame(action, info)` after every emulator frame and reset (action None)."""

    def __init__(
        self, env: gym.Env, on_frame: Callable[[int | None, dict[str, Any]], None]
    ) -> None:
        super().__init__(env)
        self.on_frame = on_frame

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.on_frame(None, info)
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        result = self.env.step(action)
        self.on_frame(int(action), result[4])
        return result


def observe_frames(env: gym.Env, on_frame: Callable[[int | None, dict[str, Any]], None]) -> gym.Env:
    """Slip a `FrameObserver` between `env`'s innermost wrapper and the `MarioEnv` under it."""
    if not isinstance(env, gym.Wrapper):
        return FrameObserver(env, on_frame)
    wrapper = env
    while isinstance(wrapper.env, gym.Wrapper):
        wrapper = wrapper.env
    wrapper.env = FrameObserver(wrapper.env, on_frame)
    return env


def agent_label(policy: Policy) -> str:
    """`<algo> agent (<folder>/<file>)`, naming the checkpoint it was loaded from."""
    path = Path(policy.checkpoint_path)
    return f"{policy.algo} agent ({path.parent.name}/{path.name})"


def agent_run(
    policy: Policy,
    config: EnvConfig,
    window: Window,
    *,
    seed: int | None = None,
    max_frames: int | None = None,
    note: str = "",
    help_line: str = WATCH_HELP,
) -> RunResult:
    """One episode of `policy` in the pipeline `config` describes, every frame shown. With
    a `seed`, a sampling or epsilon policy draws its actions as evaluation's episode of that
    seed does (`evaluate.acting_rng`), so the episode replays."""
    from mario_rl.evaluate import acting_rng  # here: it imports torch, `play` does not

    if seed is not None:
        policy.rng = acting_rng(seed)
    # A stall on screen is a run that stopped, never a death: that is a training rule.
    env = policy.make_env(replace(config, no_progress_is_death=False), seed=seed)
    mario = env.unwrapped
    if not isinstance(mario, MarioEnv):
        raise ValueError(f"expected the agent's env to wrap a MarioEnv, got {type(mario).__name__}")
    label = agent_label(policy)

    # A quit is taken at the end of the agent's step (`window.quit_requested`), so that one
    # on the step's last frame, where the run may have ended, leaves its outcome as it was.
    def on_frame(action: int | None, info: dict[str, Any]) -> None:
        if window.quit_requested:
            return
        buttons = "none" if action is None else "+".join(mario.action_buttons[action])
        status = (
            f"{label}   {buttons}   x {info['x_pos']}   time {info['time']}   "
            f"frame {mario.frames}{note}"
        )
        with contextlib.suppress(QuitRequested):
            window.show(mario.screen_rgb(), [status, help_line])

    env = observe_frames(env, on_frame)
    outcome = "stopped"
    try:
        obs, info = env.reset(seed=seed)
        start_time, max_x = info["time"], info["x_pos"]
        while not window.quit_requested and (max_frames is None or mario.frames < max_frames):
            action = policy.act(np.asarray(obs)[None])[0]
            obs, _, terminated, truncated, info = env.step(action)
            max_x = max(max_x, info["x_pos"])
            if terminated:
                outcome = ended_as(info)
                break
            if truncated:
                break
        else:
            if window.quit_requested:
                outcome = "quit"
        return RunResult(config.level, outcome, mario.frames, start_time - info["time"], max_x)
    finally:
        env.close()


def watch(
    policy: Policy,
    window: Window,
    *,
    level: str | None = None,
    episodes: int = 1,
    seed: int = 0,
    max_frames: int | None = None,
) -> list[RunResult]:
    """Show `episodes` episodes of `policy` (episode i seeded `seed + i`); stops on quit.

    `max_frames` caps the frames shown over all episodes together.
    """
    # One level on screen, even for an agent trained on several.
    config = replace(policy.env_config, level=level or policy.env_config.level, levels=())
    results: list[RunResult] = []
    shown = 0
    for episode in range(episodes):
        left = None if max_frames is None else max_frames - shown
        if left is not None and left <= 0:
            break
        result = agent_run(
            policy,
            config,
            window,
            seed=seed + episode,
            max_frames=left,
            note=f"   episode {episode + 1}/{episodes}",
        )
        results.append(result)
        shown += result.frames
        if result.outcome == "quit" or window.quit_requested:
            break
    return results


# -- the race ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaceResult:
    human: RunResult
    agent: RunResult | None
    """None when the race was stopped before the agent's run ended."""
    winner: str
    """human, agent, tie, nobody (neither finished), or stopped (a quit: no winner)."""
    board_error: str | None = None
    """Why the runs could not (all) be put on the leaderboard; None when they were."""


RACE_VERDICTS = {
    "human": "{name} wins!",
    "agent": "the agent wins",
    "tie": "a tie",
    "nobody": "nobody finished",
    "stopped": "the race was stopped: no winner",
}
"""A race's winner (`RaceResult.winner`) in words; `{name}` is the person's."""


def race_winner(human: RunResult, agent: RunResult) -> str:
    """The faster finish in emulator frames (then game time); an unfinished run never wins."""
    if human.finished and agent.finished:
        human_time, agent_time = (human.frames, human.game_time), (agent.frames, agent.game_time)
        if human_time == agent_time:
            return "tie"
        return "human" if human_time < agent_time else "agent"
    if human.finished:
        return "human"
    if agent.finished:
        return "agent"
    return "nobody"


def race_level(level: str) -> str:
    """The short name of a level one can race on: a single level, not the whole game."""
    parsed = parse_level(level)
    if parsed.is_full_game:
        raise ValueError(
            f"race: expected a single level such as 1-1, got {level!r} (the whole game has no "
            "single finish line)"
        )
    return parsed.name


def race(
    level: str,
    name: str,
    policy: Policy,
    inputs: Inputs,
    window: Window,
    *,
    help_line: str = "",
    max_frames: int | None = None,
    recorder: InputRecorder | None = None,
    board: Leaderboard | None = None,
) -> RaceResult:
    """`name` plays `level`, then `policy` plays it from the same start; both go on `board`.

    Closing the window before the person's run raises QuitRequested, nothing recorded (a
    key there only skips the message). A quit (key or window) during the person's run is
    recorded as its outcome, or, on the frame that ended it, leaves its outcome; either way
    the agent does not play. A quit during the agent's run, or closing the window before
    it, keeps the person's run alone. The winner is then "stopped": a race one side did
    not run to its end has none.
    """
    level = race_level(level)
    window.message([f"{name}: your run on {level}", "reach the flag as fast as you can"])
    human = play_level(
        level,
        inputs,
        window,
        help_line=help_line,
        max_frames=max_frames,
        recorder=recorder,
    )
    agent = None
    if human.outcome != "quit" and not window.quit_requested:
        # The same start as the person's: no random no-op frames, no sticky actions.
        config = replace(
            policy.env_config, level=level, levels=(), noop_max=0, sticky_probability=0.0
        )
        try:
            window.message(
                [f"{name}: {human.describe()}", "now the agent runs from the same start"]
            )
            agent = agent_run(policy, config, window, max_frames=max_frames, help_line=help_line)
        except QuitRequested:
            pass  # closed during the message before the agent's run
        if agent is not None and (agent.outcome == "quit" or window.quit_requested):
            agent = None
    winner = "stopped" if agent is None else race_winner(human, agent)
    board_error = None
    if board is not None:
        # The race was run either way: a board that fails (locked, read-only, full disk)
        # costs its entries, not the result.
        runs = [(name, "human", human)]
        if agent is not None:
            runs.append((agent_label(policy), "agent", agent))
        try:
            board.record_runs(runs)
        except (LeaderboardError, OSError) as error:
            board_error = str(error)
    # The race is over and recorded: closing the window on its result is fine.
    with contextlib.suppress(QuitRequested):
        window.message(
            [
                f"{name}: {human.describe()}",
                "agent: " + ("did not run to its end" if agent is None else agent.describe()),
                RACE_VERDICTS[winner].format(name=name),
            ]
        )
    return RaceResult(human, agent, winner, board_error)
