"""Riding out a storage that fails for a while (a database server restarting, a dropped connection, a
locked SQLite file): the calls a worker cannot do without are retried with back-off."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import optuna
import sqlalchemy

TRANSIENT = (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
             sqlalchemy.exc.InternalError, sqlalchemy.exc.PendingRollbackError, sqlalchemy.exc.DisconnectionError)
"""Storage errors worth retrying (a lost connection, a server shutting down, a locked file); Optuna wraps
the database's own errors in StorageInternalError. Integrity errors and the like are not retried."""
T = TypeVar("T")


def with_retry(call: Callable[[], T], *, within_s: float) -> T:
    """``call()``, retried with back-off while the storage fails transiently, for up to ``within_s``."""
    started, delay = time.monotonic(), 0.2
    while True:
        try:
            return call()
        except TRANSIENT:
            if time.monotonic() - started + delay > within_s:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 5.0)
