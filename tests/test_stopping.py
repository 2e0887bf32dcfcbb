"""How commands stop: SIGTERM and SIGHUP arrive as Ctrl-C does, and a shutdown can defer them."""

import os
import signal

import pytest

from mario_rl.stopping import Terminated, stop_signals_deferred, stop_signals_interrupt


def send(signum: int) -> None:
    os.kill(os.getpid(), signum)
    signal.sigtimedwait([], 0)  # let a handler run before the next line


@pytest.mark.usefixtures("stop_signals_at_their_defaults")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_kill_and_a_closed_terminal_stop_a_command_as_ctrl_c_does(signum):
    before = signal.getsignal(signum)
    with pytest.raises(Terminated), stop_signals_interrupt():
        send(signum)
    assert signal.getsignal(signum) is before  # restored for whatever runs next


def test_a_hangup_that_nohup_ignores_stays_ignored():
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals_interrupt():
            send(signal.SIGHUP)  # nothing happens
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_background_jobs_ignored_sigint_still_stops_the_command():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(KeyboardInterrupt), stop_signals_interrupt():
            send(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("stop_signals_at_their_defaults")
def test_a_shutdown_notes_stop_signals_instead_of_being_cut_short():
    with stop_signals_deferred() as received:
        send(signal.SIGINT)
        send(signal.SIGTERM)
        finished = True
    assert finished and received == [signal.SIGINT, signal.SIGTERM]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
