"""Stopping on SIGINT and SIGTERM the way well-made command lines do: the first signal raises
KeyboardInterrupt once; later ones do nothing, so that a second Ctrl-C cannot cut short the clean-up
(queueing the interrupted trial again).

Python runs a signal handler between two bytecodes of whatever the main thread is doing, which may be a
weakref callback or a finalizer; an exception raised there cannot propagate, and Python only prints it
("Exception ignored in ...") and goes on, so the stop would be lost. Such a stop is caught by
``sys.unraisablehook`` and delivered again a moment later, in ordinary code.
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
from typing import Any

REDELIVER_S = 0.01
"""How long after a lost stop it is raised again (long enough for the failed callback to have returned)."""


class Stop(KeyboardInterrupt):
    """The interrupt raised by the first SIGINT or SIGTERM."""


class SignalStop:
    """Installs the handlers; ``received`` lists the signals as they come. Use :meth:`restore` after."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: list[int] = []
        self._raised = False
        self._exiting = False
        self._handlers = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        self._hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable

    @property
    def by_sigterm(self) -> bool:
        return signal.SIGTERM in self.received

    def restore(self) -> None:
        for sig, handler in self._handlers.items():
            signal.signal(sig, handler)
        sys.unraisablehook = self._hook

    def ignore_until_exit(self) -> None:
        """Ignore these signals from now on. For a process that is about to exit: while it ends, Python puts
        the default handlers back, and a late Ctrl-C would then kill it by SIGINT and lose its exit code."""
        self._exiting = True
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def _handle(self, signum: int, frame: object) -> None:
        self.received.append(signum)
        if not self._raised:
            self._raised = True
            raise Stop
        # later signals do nothing (a no-op handler, not SIG_IGN: a signal already pending when the handler
        # changed to SIG_IGN would raise "ignored due to race condition" in the middle of the clean-up)

    def _unraisable(self, unraisable: Any) -> None:
        if self._exiting and "ignored due to race condition" in str(unraisable.exc_value):
            return  # a signal that came just as ignore_until_exit switched the handlers: ignored, as asked
        if not isinstance(unraisable.exc_value, Stop):
            self._hook(unraisable)
            return
        self._raised = False  # the stop never reached the program: raise it again, from a thread, later
        threading.Timer(REDELIVER_S, _thread.interrupt_main, args=(self.received[0],)).start()
