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

Reading never needs write access. ``open_storage(url, create=False, read_only=True)`` (what ``results``
and ``report`` use) opens the file with SQLite's ``mode=ro``; a WAL-mode file in a folder it cannot write
(a read-only file system, another user's run directory) cannot get its ``-shm`` index, and is then opened
``immutable`` when it has no pending write-ahead log, or else read from a private copy of the file and its
log. A local file is checked before Optuna touches it: a missing, empty (0-byte), non-SQLite or damaged
file is one error naming the file and what is wrong with it.

New SQLite files are created whole: initialised under a temporary name and linked into place, so no
process ever sees a 0-byte storage being created; a 0-byte file is therefore never taken as an empty
storage (it is what a truncated copy or ``touch`` leaves) but refused, for reading and for writing.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import sqlite3
import tempfile
import time
import urllib.parse
import warnings
import weakref
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from scalelab.errors import SearchError

DEFAULT_FILE = "scalelab.db"
MAX_RETRY = 3
"""How many times a trial whose worker died is queued again before it is left failed."""
ENV_STORAGE = "SCALELAB_STORAGE"
"""Environment variable naming the storage (a path or URL) when ``--storage`` is not given."""
_SQLITE_MAGIC = b"SQLite format 3\x00"
_READ_ERRORS = (sqlalchemy.exc.SQLAlchemyError, sqlite3.Error, optuna.exceptions.StorageInternalError)


def storage_url(storage: str | None, run_dir: str | Path = "runs") -> str:
    """The storage URL: ``storage`` if given (a path -> that SQLite file, a URL as given), else
    ``$SCALELAB_STORAGE`` if set (the same way), else the SQLite file ``<run_dir>/scalelab.db``."""
    if storage is None:
        storage = os.environ.get(ENV_STORAGE, "").strip() or None
    if storage is None:
        return f"sqlite:///{Path(run_dir) / DEFAULT_FILE}"
    return storage if "://" in storage else f"sqlite:///{storage}"


def display_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except (sqlalchemy.exc.ArgumentError, ValueError, TypeError):
        return url


def open_storage(url: str, *, create: bool = True, heartbeat_s: int | None = None,
                 read_only: bool | None = None) -> RDBStorage:
    """Open (and with ``create``, initialise) the storage at ``url``.

    ``heartbeat_s`` turns on heartbeats: running trials record one every ``heartbeat_s`` seconds, and a
    trial silent for three intervals is failed and queued again (at most :data:`MAX_RETRY` times).
    Without ``create`` a missing SQLite file is an error rather than a new empty database.

    ``read_only=True`` opens a SQLite file for reading only (no write access to it or its folder needed;
    it must already exist). ``None`` (the default) does so only when ``create`` is off and the file or its
    folder cannot be written; ``False`` insists on write access and says so up front when it is lacking.
    """
    sa_url = _parse(url)
    path = _sqlite_path(sa_url)
    if path is not None:
        _check_sqlite_file(path, must_exist=not create or bool(read_only))
        writable = _writable(path)
        if read_only is None:
            read_only = not create and path.exists() and not writable
        if read_only:
            if heartbeat_s is not None:
                raise SearchError(f"study storage {path} is opened read-only; it cannot record heartbeats")
            return _open_sqlite_read_only(path)
        if not writable:
            raise SearchError(f"study storage {path} is not writable (read-only file or folder); `scalelab "
                              "results` and `report` can read it, but training needs write access: copy it "
                              "somewhere writable or pass --storage")
        if not path.exists():
            _create_sqlite_file(path)
    elif read_only and sa_url.get_backend_name() == "sqlite":
        raise SearchError(f"cannot open {display_url(url)} read-only; give a SQLite file path")
    try:
        with warnings.catch_warnings():  # heartbeats are flagged experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            heartbeat = {} if heartbeat_s is None else dict(
                heartbeat_interval=heartbeat_s, grace_period=3 * heartbeat_s,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(MAX_RETRY))
            storage = _create_rdb(sa_url, heartbeat)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError, TypeError) as exc:
        raise _open_error(url, sa_url, exc) from exc
    if storage.engine.name == "sqlite":
        _serialise_sqlite(storage.engine)
        if path is not None:
            _ENGINES.setdefault(str(path.resolve()), weakref.WeakSet()).add(storage.engine)
    return storage


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite storage URL names; None for another database, or an in-memory or URI one."""
    return _sqlite_path(_parse(url))


def _sqlite_path(sa_url: sqlalchemy.engine.URL) -> Path | None:
    database = sa_url.database
    if sa_url.get_backend_name() != "sqlite" or database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


SCHEMA_RACE_ATTEMPTS = 5


def _create_rdb(sa_url: sqlalchemy.engine.URL, heartbeat: dict) -> RDBStorage:
    """Optuna's storage on ``sa_url``. On a new database server-side, processes starting together each
    create Optuna's tables and types; all but one fail with "already exists" (PostgreSQL; SQLite too where
    another program, plain Optuna say, made the file and is making its tables), and a short wait and a
    second look find the schema the winner made."""
    attempt = 1
    while True:
        try:
            storage = RDBStorage(sa_url.render_as_string(hide_password=False),
                                 engine_kwargs=_engine_kwargs(sa_url), **heartbeat)
            _OPEN.add(storage.engine)
            return storage
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.OperationalError) as exc:
            racing = isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in str(exc)
            if not racing or attempt == SCHEMA_RACE_ATTEMPTS:
                raise
        time.sleep(0.2 * attempt)
        attempt += 1


def _open_error(url: str, sa_url: sqlalchemy.engine.URL, exc: BaseException) -> SearchError:
    reason = _first_line(exc)
    if sa_url.get_backend_name() == "sqlite":
        where = sa_url.database or display_url(url)
        if isinstance(exc, sqlalchemy.exc.DatabaseError) and _is_damage(reason):
            return SearchError(f"{where} is not a valid SQLite database ({reason}); restore it from a copy or "
                               "pass --storage with another file")
        return SearchError(f"cannot open study storage {where}: {reason}")
    return SearchError(f"cannot open study storage {display_url(url)}: {reason}; check the URL, that the "
                       "database server is running and reachable, and its driver is installed "
                       "(PostgreSQL: pip install psycopg2-binary)")


def _first_line(exc: BaseException) -> str:
    """The first line of the innermost cause: the driver's own words (SQLAlchemy and Optuna wrap them)."""
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        if isinstance(exc, sqlite3.Error):
            break
        exc = getattr(exc, "orig", None) or exc.__cause__ or (None if isinstance(
            exc, sqlalchemy.exc.SQLAlchemyError) else exc.__context__)
    exc = exc if exc is not None else seen[-1]
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_damage(reason: str) -> bool:
    return any(s in reason for s in ("not a database", "malformed", "file is encrypted", "corrupt"))


def _parse(url: str) -> sqlalchemy.engine.URL:
    how = ("use a file path such as runs/scalelab.db or a SQLAlchemy URL such as "
           "postgresql://user:password@host/db")
    if not isinstance(url, str) or not url.strip():
        raise SearchError(f"the storage URL is empty; {how}")
    try:
        sa_url = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError, TypeError) as exc:
        detail = f" ({_first_line(exc)})" if not isinstance(exc, sqlalchemy.exc.ArgumentError) else ""
        raise SearchError(f"cannot read storage URL '{display_url(url)}'{detail}; {how}") from None
    try:
        sa_url.get_backend_name(), sa_url.get_dialect()
    except (sqlalchemy.exc.NoSuchModuleError, sqlalchemy.exc.ArgumentError) as exc:
        raise SearchError(f"storage URL '{display_url(url)}' names no database SQLAlchemy knows "
                          f"({_first_line(exc)}); {how}") from None
    except ImportError:
        pass  # a known dialect whose driver is missing: the open below says which to install
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; use psycopg2 when only that is installed.
    if (sa_url.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None
            and importlib.util.find_spec("psycopg2") is not None):
        sa_url = sa_url.set(drivername="postgresql+psycopg2")
    return sa_url


# --- local SQLite files -------------------------------------------------------------------------------------


def _check_sqlite_file(path: Path, *, must_exist: bool) -> None:
    """One error naming ``path`` and what is wrong with it, before SQLite or Optuna sees it."""
    hint = "run a study first (for example `scalelab grid`) or pass --storage with the right path or URL"
    parent = path.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise SearchError(f"cannot use study storage {path}: {folder} is a file, not a folder")
            break
    if not path.exists():
        if must_exist:
            raise SearchError(f"no study storage at {path}; {hint}")
        return
    if path.is_dir():
        raise SearchError(f"study storage {path} is a folder; give the SQLite file inside it (for example "
                          f"{path / DEFAULT_FILE})")
    if _connected(path):
        return  # checked when this process connected, and reading it raw now could drop SQLite's locks
    _check_sqlite_content(path)


_OPEN: weakref.WeakSet = weakref.WeakSet()
"""Every engine this process opened on a study storage, closed at exit by :func:`_close_all`."""


@atexit.register
def _close_all() -> None:
    """Close the pooled connections of every open storage as the process ends. The last connection to a
    SQLite file in WAL mode checkpoints the log into the file and removes its -wal and -shm files; the
    interpreter's exit no longer closes them, since the command line freezes the garbage collector then
    (:func:`scalelab.cli.main`), and a copy of the bare file would lack what only the log held."""
    for engine in list(_OPEN):
        with contextlib.suppress(Exception):
            engine.dispose()


_ENGINES: dict[str, weakref.WeakSet] = {}
"""This process's open engines on each SQLite file. While one is open, the file is not read raw: closing
any descriptor of a file drops every POSIX lock the process holds on it, SQLite's shared lock included,
and another process could then take itself for the last user of the write-ahead log and remove it under
this one ("disk I/O error", seen with two commands started together on one file)."""


def _connected(path: Path) -> bool:
    """Whether an engine of this process holds a connection (open or pooled) to the file."""
    for engine in _ENGINES.get(str(path.resolve()), ()):
        pool = engine.pool
        if not hasattr(pool, "checkedin") or pool.checkedin() + pool.checkedout() > 0:
            return True
    return False


def _check_sqlite_content(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as exc:
        raise SearchError(f"cannot read study storage {path}: {exc.strerror or exc}") from None
    if not head:
        raise SearchError(f"study storage {path} is an empty file (0 bytes), not a SQLite database; if it held "
                          "studies restore it from a copy, otherwise delete it to start a new storage")
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        raise SearchError(f"{path} is not a valid SQLite database (no SQLite header); pass --storage with the "
                          "right file, or move this one away to start a new storage")
    problem = _sqlite_problem(path)
    if problem:
        raise SearchError(f"{path} is not a valid SQLite database ({problem}); restore it from a copy or pass "
                          "--storage with another file")


def _sqlite_problem(path: Path) -> str | None:
    """What SQLite's quick check finds wrong with a file (milliseconds for a study storage). It reads
    through an ordinary connection where the folder is writable (closing it leaves no -wal/-shm behind),
    else read-only, then immutable."""
    if _writable(path):
        uris = [_sqlite_uri(path, mode="rw")]
    else:
        uris = [_sqlite_uri(path, mode="ro")]
        if not _has_pending_wal(path):
            uris.append(_sqlite_uri(path, mode="ro", immutable=1))
    for uri in uris:
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=60)) as con:
                rows = con.execute("PRAGMA quick_check").fetchall()
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            reason = _first_line(exc)
            if _is_damage(reason):
                return reason
            continue  # cannot read it this way (read-only folder, WAL): try the next
        if rows != [("ok",)]:
            return "; ".join(str(r[0]) for r in rows[:2])
        if tables and "studies" not in tables:
            return "a SQLite database, but not a study storage: it has no Optuna tables"
        return None
    return None  # cannot check it here; opening it says why


def _has_pending_wal(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    try:
        return wal.stat().st_size > 0
    except OSError:
        return False


def _sqlite_uri(path: Path, **params: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"file:{urllib.parse.quote(str(path.absolute()))}?{query}"


def _writable(path: Path) -> bool:
    """Whether SQLite can write ``path`` (and its journal beside it): the file and its folder writable."""
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


_EMPTY_STORAGE: bytes | None = None
"""The bytes of the first new storage this process made, the copy every later one starts from: Optuna's
schema and Alembic's version stamp take about 0.6 s to write, a copy of the file well under 1 ms."""


def _create_sqlite_file(path: Path) -> None:
    """Create a new, empty study storage at ``path`` whole (WAL mode, Optuna's tables): initialised under a
    temporary name and hard-linked into place, so another process never finds it at 0 bytes or half made;
    if one was made meanwhile by another command it is kept."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
    except OSError as exc:
        raise SearchError(f"cannot create study storage {path}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        # Optuna's tables go in before the file is linked into place: commands started together then all
        # find either no file (and race only to link theirs) or a complete storage, never half a schema.
        global _EMPTY_STORAGE
        if _EMPTY_STORAGE is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                initial = RDBStorage(f"sqlite:///{tmp}", engine_kwargs={"connect_args": {"timeout": 60}})
            with initial.engine.connect() as con:
                con.exec_driver_sql("PRAGMA journal_mode=WAL")
            initial.engine.dispose()  # the last connection checkpoints the log into the file
            _EMPTY_STORAGE = Path(tmp).read_bytes()
        else:
            with open(tmp, "wb") as f:
                f.write(_EMPTY_STORAGE)
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another command created it first: use theirs
        except OSError:  # a file system without hard links: rename unless someone was faster
            if not path.exists():
                os.replace(tmp, path)
    except (OSError, sqlalchemy.exc.SQLAlchemyError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _first_line(exc)
        raise SearchError(f"cannot create study storage {path}: {reason}") from None
    finally:
        for leftover in (tmp, tmp + "-wal", tmp + "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)


def _open_sqlite_read_only(path: Path) -> RDBStorage:
    """A storage that reads ``path`` and never writes it (see the module docstring for the order in which
    the ways are tried where its folder is not writable)."""
    if _writable(path):  # an ordinary connection that refuses writes, and cleans its -wal/-shm up
        try:
            return _rdb_read_only(f"sqlite:///{path}", query_only=True)
        except _READ_ERRORS as exc:
            raise _read_error(path, exc) from None
    ways = [_sqlite_uri(path, mode="ro")]
    if not _has_pending_wal(path):
        ways.append(_sqlite_uri(path, mode="ro", immutable=1))
    last: BaseException | None = None
    for uri in ways:
        try:
            return _rdb_read_only(f"sqlite:///{uri}&uri=true")
        except _READ_ERRORS as exc:
            last = exc
            if _is_damage(_first_line(exc)):
                raise _read_error(path, exc) from None
    if _has_pending_wal(path):  # a log SQLite cannot replay in place: read a private copy
        try:
            return _rdb_read_only(f"sqlite:///{_sqlite_uri(_private_copy(path), mode='ro')}&uri=true")
        except (*_READ_ERRORS, OSError) as exc:
            last = exc
    raise _read_error(path, last)


def _read_error(path: Path, exc: BaseException | None) -> SearchError:
    reason = _first_line(exc) if exc is not None else "unknown error"
    if _is_damage(reason):
        return SearchError(f"{path} is not a valid SQLite database ({reason}); restore it from a copy")
    return SearchError(f"cannot read study storage {path}: {reason}")


def _rdb_read_only(url: str, *, query_only: bool = False) -> RDBStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}}, skip_table_creation=True)
    _OPEN.add(storage.engine)
    if query_only:
        @sqlalchemy.event.listens_for(storage.engine, "connect")
        def _connect(dbapi_connection, _record) -> None:
            dbapi_connection.execute("PRAGMA query_only=1")

        storage.engine.dispose()  # connections opened while Optuna checked the schema lack the listener
    with storage.engine.connect() as con:  # fail now, not at the first query, if this way cannot read it
        con.exec_driver_sql("SELECT count(*) FROM studies").fetchall()
    return storage


def _private_copy(path: Path) -> Path:
    """Copy ``path`` and its write-ahead log into a private folder removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="scalelab-storage-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy = folder / path.name
    for suffix in ("", "-wal"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            shutil.copyfile(source, folder / (path.name + suffix))
    return copy


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
