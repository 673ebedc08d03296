"""Where studies live: an Optuna RDB storage, a SQLite file locally or any SQLAlchemy URL (PostgreSQL
for many machines).

Why SQLite rather than Optuna's journal file for the local default: heartbeats. A trial whose process
died stays RUNNING forever unless its heartbeat goes stale, and in the installed Optuna only
``RDBStorage`` records heartbeats and fails stale trials (``RetryHeartbeatStaleTrialCallback`` then
queues them again). One storage class for SQLite and PostgreSQL also keeps one code path, and the file
opens in any SQLite tool.

SQLite needs care with several processes. Python's sqlite3 driver opens a transaction only at the first
write, so two workers can both read a queued trial as WAITING and both mark it RUNNING (the
``SELECT ... FOR UPDATE`` Optuna relies on is a no-op in SQLite). Every transaction here therefore starts
with ``BEGIN IMMEDIATE``, which takes the write lock up front and makes read-check-write atomic; a 60 s
busy timeout lets the other workers wait for the lock instead of failing. Keep the file on a local disk
(SQLite's locks are unreliable on network file systems); for several machines use PostgreSQL.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from scalelab.errors import SearchError

DEFAULT_FILE = "scalelab.db"
MAX_RETRY = 3
"""How many times a trial whose worker died is queued again before it is left failed."""


def storage_url(storage: str | None, run_dir: str | Path = "runs") -> str:
    """``None`` -> the SQLite file ``<run_dir>/scalelab.db``; a path -> that SQLite file; a URL as given."""
    if storage is None:
        return f"sqlite:///{Path(run_dir) / DEFAULT_FILE}"
    return storage if "://" in storage else f"sqlite:///{storage}"


def display_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def open_storage(url: str, *, create: bool = True, heartbeat_s: int | None = None) -> RDBStorage:
    """Open (and with ``create``, initialise) the storage at ``url``.

    ``heartbeat_s`` turns on heartbeats: running trials record one every ``heartbeat_s`` seconds, and a
    trial silent for three intervals is failed and queued again (at most :data:`MAX_RETRY` times).
    Without ``create`` a missing SQLite file is an error rather than a new empty database.
    """
    sa_url = _parse(url)
    if sa_url.get_backend_name() == "sqlite" and sa_url.database not in (None, "", ":memory:"):
        path = Path(sa_url.database)
        if not create and not path.is_file():
            raise SearchError(f"no study storage at {path}; run a study first (for example `scalelab grid`) "
                              "or pass --storage with the right path or URL")
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():  # heartbeats are flagged experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            heartbeat = {} if heartbeat_s is None else dict(
                heartbeat_interval=heartbeat_s, grace_period=3 * heartbeat_s,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(MAX_RETRY))
            storage = RDBStorage(sa_url.render_as_string(hide_password=False),
                                 engine_kwargs=_engine_kwargs(sa_url), **heartbeat)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SearchError(f"cannot open study storage {display_url(url)}: {reason}; check the URL, that "
                          "the database server is running and reachable, and its driver is installed "
                          "(PostgreSQL: pip install psycopg2-binary)") from exc
    if storage.engine.name == "sqlite":
        _serialise_sqlite(storage.engine)
    return storage


def _parse(url: str) -> sqlalchemy.engine.URL:
    try:
        sa_url = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError as exc:
        raise SearchError(f"cannot read storage URL '{url}'; use a file path such as runs/scalelab.db or a "
                          "SQLAlchemy URL such as postgresql://user:password@host/db") from exc
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; use psycopg2 when only that is installed.
    if (sa_url.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None
            and importlib.util.find_spec("psycopg2") is not None):
        sa_url = sa_url.set(drivername="postgresql+psycopg2")
    return sa_url


def _engine_kwargs(url: sqlalchemy.engine.URL) -> dict:
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": 60}}
    if url.get_backend_name() == "postgresql":
        return {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    return {}


def _serialise_sqlite(engine: sqlalchemy.engine.Engine) -> None:
    """Make every SQLite transaction take the write lock when it begins (see the module docstring), in
    write-ahead-log mode without a disk flush per commit: a commit then survives its process being
    killed, only a power cut can lose the last ones, and a trial's dozens of small writes stay cheap."""

    @sqlalchemy.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event below issues BEGIN
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while Optuna set the tables up lack the listeners
