"""How a command stops: SIGTERM, SIGHUP and a background job's SIGINT act as Ctrl-C does.

A training run catches `KeyboardInterrupt` to write its checkpoint before it exits, so
every way a person stops a command should arrive as one: `kill PID` (SIGTERM), a closed
terminal (SIGHUP) and `kill -INT PID` of a job started with `nohup ... &` (which the shell
starts with SIGINT ignored) would otherwise end it at once and lose the work since the
last checkpoint.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled as Ctrl-C is; a command then exits 143, not 130."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated`, and SIGINT raises
    `KeyboardInterrupt` even in a background job. A SIGHUP that was ignored (`nohup`)
    stays ignored. The handlers before are restored afterwards (tests call commands in
    their own process)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    signal.signal(signal.SIGTERM, _terminate)
    if before[signal.SIGHUP] is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _terminate)
    if before[signal.SIGINT] is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def stop_signals_deferred() -> Iterator[list[int]]:
    """Within the block, stop signals are only noted (in the yielded list), so a shutdown
    that must finish (stopping a child once, writing a log) is not cut short by a second
    Ctrl-C; the caller decides what a noted signal means afterwards."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    before = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    for number in STOP_SIGNALS:
        if before[number] is not signal.SIG_IGN:
            signal.signal(number, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def stop_exception(signum: int) -> KeyboardInterrupt:
    """What a stop signal noted by `stop_signals_deferred` raises once the caller may stop:
    `KeyboardInterrupt` for SIGINT, `Terminated` for SIGTERM and SIGHUP."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated()
