"""The first SIGINT/SIGTERM stops the program once, even when Python runs the handler inside a weakref
callback (where an exception cannot propagate); later signals do nothing."""

import signal
import time
import weakref

import pytest

from scalelab.signals import SignalStop, Stop


class _Thing:
    pass


def _signal_inside_a_weakref_callback() -> None:
    def callback(_ref: object) -> None:
        signal.raise_signal(signal.SIGTERM)  # the handler runs at the next bytecode, still in the callback
        sum(range(10))

    thing = _Thing()
    ref = weakref.ref(thing, callback)  # noqa: F841  (kept alive so that its callback runs)
    del thing


def test_a_stop_raised_inside_a_weakref_callback_is_delivered_again(capfd):
    stop = SignalStop()
    try:
        with pytest.raises(Stop):
            _signal_inside_a_weakref_callback()
            deadline = time.monotonic() + 60  # the stop ends the wait; the deadline is for a heavily loaded machine
            while time.monotonic() < deadline:
                time.sleep(0.001)
        assert stop.by_sigterm
    finally:
        stop.restore()
    assert "Exception ignored" not in capfd.readouterr().err


def test_later_signals_do_nothing_and_restore_puts_the_handlers_back():
    before = signal.getsignal(signal.SIGINT)
    stop = SignalStop()
    try:
        with pytest.raises(Stop):
            signal.raise_signal(signal.SIGINT)
            time.sleep(1)
        signal.raise_signal(signal.SIGINT)  # a second Ctrl-C during the clean-up
        time.sleep(0.01)
        assert stop.received == [signal.SIGINT, signal.SIGINT] and not stop.by_sigterm
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGINT) is before
