"""The study storage: reading without write access, one-line errors about local files and URLs, new files
created whole, and $SCALELAB_STORAGE. Optuna studies here are tiny (a few float trials, no training)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

from scalelab.errors import SearchError
from scalelab.search import storage as st

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _make_storage(path: Path, trials: int = 3) -> Path:
    storage = st.open_storage(f"sqlite:///{path}")
    study = optuna.create_study(storage=storage, study_name="a")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=trials)
    storage.engine.dispose()  # the last connection checkpoints the log and removes -wal and -shm
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return _make_storage(tmp_path / "runs" / "scalelab.db")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_storage_url_prefers_flag_then_environment_then_run_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(st.ENV_STORAGE, raising=False)
    assert st.storage_url(None, tmp_path) == f"sqlite:///{tmp_path / 'scalelab.db'}"
    monkeypatch.setenv(st.ENV_STORAGE, "elsewhere/x.db")
    assert st.storage_url(None, tmp_path) == "sqlite:///elsewhere/x.db"
    monkeypatch.setenv(st.ENV_STORAGE, "postgresql://u:p@host/db")
    assert st.storage_url(None, tmp_path) == "postgresql://u:p@host/db"
    assert st.storage_url("given.db", tmp_path) == "sqlite:///given.db"
    monkeypatch.setenv(st.ENV_STORAGE, "  ")  # set but blank: as if unset
    assert st.storage_url(None, tmp_path) == f"sqlite:///{tmp_path / 'scalelab.db'}"


def test_reading_leaves_the_folder_byte_identical(db):
    before = _snapshot(db.parent)
    storage = st.open_storage(f"sqlite:///{db}", create=False, read_only=True)
    assert len(optuna.load_study(study_name="a", storage=storage).trials) == 3
    with pytest.raises(Exception):  # noqa: B017 - whatever Optuna wraps it in, the write is refused
        optuna.create_study(storage=storage, study_name="b")
    storage.engine.dispose()
    assert _snapshot(db.parent) == before


_WRITER = textwrap.dedent("""
    import atexit, gc, sys
    atexit.register(gc.freeze)  # as scalelab.cli.main does: no final collection closes the connections
    import optuna
    from scalelab.search import storage as st
    storage = st.open_storage(f"sqlite:///{sys.argv[1]}")
    optuna.create_study(storage=storage, study_name="a").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    reader = st.open_storage(f"sqlite:///{sys.argv[1]}", create=False, read_only=True)
    print(len(optuna.load_study(study_name="a", storage=reader).trials))
""")


def test_a_process_ends_with_its_storage_one_whole_file(tmp_path):
    """At exit every connection is closed, so the write-ahead log is checkpointed into the file and no
    -wal or -shm is left: a copy of the bare file holds every trial."""
    path = tmp_path / "s.db"
    out = subprocess.run([sys.executable, "-c", _WRITER, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "2", out.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["s.db"]
    copy = tmp_path / "copy" / "s.db"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    storage = st.open_storage(f"sqlite:///{copy}", create=False, read_only=True)
    assert len(optuna.load_study(study_name="a", storage=storage).trials) == 2
    storage.engine.dispose()


def test_new_storage_is_created_whole_and_never_empty(tmp_path):
    path = tmp_path / "new" / "deeper" / "s.db"
    st.open_storage(f"sqlite:///{path}").engine.dispose()
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.db"]  # no temporary file left
    st.open_storage(f"sqlite:///{path}").engine.dispose()  # and it opens again as a storage


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is an empty file (0 bytes), not a SQLite database"),
    (b"hello " * 100, "is not a valid SQLite database (no SQLite header)"),
    (b"SQLite format 3\x00" + b"\x00" * 20, "is not a valid SQLite database"),
])
@pytest.mark.parametrize("mode", [dict(create=False), dict(create=True), dict(create=False, read_only=True)])
def test_bad_local_files_are_one_line_naming_the_file(tmp_path, content, message, mode):
    path = tmp_path / "s.db"
    path.write_bytes(content)
    with pytest.raises(SearchError) as info:
        st.open_storage(f"sqlite:///{path}", **mode)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text
    assert "psycopg" not in text and "server" not in text
    assert path.read_bytes() == content and sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


@pytest.mark.parametrize("mode", [dict(create=False), dict(create=True), dict(create=False, read_only=True)])
def test_damaged_pages_are_found_before_optuna_reads_them(db, mode):
    data = bytearray(db.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # page 2: a table's root page
    db.write_bytes(bytes(data))
    with pytest.raises(SearchError, match=rf"^{db} is not a valid SQLite database \(database disk image is "
                                          r"malformed\)"):
        st.open_storage(f"sqlite:///{db}", **mode)


def test_a_sqlite_file_of_another_program_is_not_taken_for_a_storage(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE notes (text)")
    before = path.read_bytes()
    with pytest.raises(SearchError, match="not a study storage: it has no Optuna tables"):
        st.open_storage(f"sqlite:///{path}")
    assert path.read_bytes() == before


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://:@:x/", "cannot read storage URL 'postgresql://:@:x/'"),
    ("nosuchdb://host/x", "names no database SQLAlchemy knows"),
    ("", "the storage URL is empty"),
    ("::::", "cannot read storage URL"),
])
def test_malformed_urls_are_one_line(url, message):
    with pytest.raises(SearchError, match=message) as info:
        st.open_storage(url, create=False)
    assert "\n" not in str(info.value)


def test_missing_folder_or_file_and_a_run_dir_that_is_a_file(tmp_path):
    with pytest.raises(SearchError, match="no study storage at"):
        st.open_storage(f"sqlite:///{tmp_path / 'none.db'}", create=False)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SearchError, match=r"afile is a file, not a folder"):
        st.open_storage(st.storage_url(None, tmp_path / "afile"))
    with pytest.raises(SearchError, match="is a folder; give the SQLite file inside it"):
        st.open_storage(f"sqlite:///{tmp_path}", create=False)


# --- no write access: a child process without the root capabilities that bypass permissions -----------------

_READER = textwrap.dedent("""
    import sys
    import optuna
    from scalelab.search import storage as st
    from scalelab.errors import SearchError
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    modes, *paths = sys.argv[1:]
    for path, mode in ((p, m) for p in paths for m in modes.split(",")):
        try:
            kw = dict(create=mode == "create", read_only={"ro": True, "rw": False}.get(mode))
            s = st.open_storage(f"sqlite:///{path}", **kw)
            print(mode, "ok", [x.study_name for x in optuna.get_all_study_summaries(s)],
                  len(optuna.load_study(study_name=optuna.get_all_study_names(s)[0], storage=s).trials))
        except SearchError as e:
            print(mode, "error", e)
""")


def _run_without_write_access(paths: list[Path], modes: list[str]) -> list[str]:
    """One child process (importing scalelab takes seconds) opening every path in every mode."""
    cmd = [sys.executable, "-c", _READER, ",".join(modes), *map(str, paths)]
    if os.geteuid() == 0:  # root ignores file modes: drop the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot take write access away")
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    return out.stdout.splitlines()


@pytest.fixture
def read_only_folders(tmp_path):
    """Three read-only folders: a checkpointed storage; a storage whose last commit is still only in its
    write-ahead log (no -shm: SQLite cannot open it in place); the same with its -shm beside it."""
    live = tmp_path / "live" / "s.db"
    _make_storage(live, trials=2)
    writer = sqlite3.connect(live)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    keep = sqlite3.connect(live)  # keeps the log from being checkpointed when the writer closes
    keep.execute("SELECT count(*) FROM studies").fetchall()
    writer.execute("UPDATE studies SET study_name = 'renamed'")
    writer.commit()
    assert (live.parent / "s.db-wal").stat().st_size > 0
    folders = {}
    for name, files in [("plain", None), ("wal", ["s.db", "s.db-wal"]), ("wal+shm", ["s.db", "s.db-wal",
                                                                                    "s.db-shm"])]:
        folder = tmp_path / name
        folder.mkdir()
        if files is None:
            _make_storage(folder / "s.db", trials=2)
        else:
            for f in files:
                shutil.copyfile(live.parent / f, folder / f)
        for f in folder.iterdir():
            f.chmod(0o444)
        folder.chmod(0o555)
        folders[name] = folder
    writer.close()
    keep.close()
    yield folders
    for folder in folders.values():
        folder.chmod(0o755)


def test_a_storage_in_a_read_only_folder_can_be_read_but_not_trained_into(read_only_folders):
    modes = ["auto", "ro", "create", "rw"]
    before = {name: _snapshot(folder) for name, folder in read_only_folders.items()}
    output = _run_without_write_access([f / "s.db" for f in read_only_folders.values()], modes)
    assert len(output) == len(modes) * len(read_only_folders)
    for i, (name, folder) in enumerate(read_only_folders.items()):
        lines = output[i * len(modes):(i + 1) * len(modes)]
        study = "a" if name == "plain" else "renamed"  # the renaming is in the log only: it must be seen
        assert lines[0] == f"auto ok ['{study}'] 2" and lines[1] == f"ro ok ['{study}'] 2", (name, lines)
        for line, mode in zip(lines[2:], ("create", "rw"), strict=True):
            assert line.startswith(f"{mode} error study storage {folder / 's.db'} is not writable"), line
        assert _snapshot(folder) == before[name], name


def _create_and_add_study(args: tuple[str, int]) -> str:
    url, i = args
    try:
        optuna.create_study(storage=st.open_storage(url), study_name=f"s{i}")
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which asserts there is none
        return f"{type(exc).__name__}: {exc}"


def test_commands_creating_one_new_storage_together_all_succeed(tmp_path):
    """The file appears complete (Optuna's tables in it) or not at all: four processes started together
    never see it empty or half made."""
    import multiprocessing

    for attempt in range(2):
        url = f"sqlite:///{tmp_path / str(attempt) / 'runs' / 'scalelab.db'}"
        with multiprocessing.get_context("fork").Pool(4) as pool:
            assert pool.map(_create_and_add_study, [(url, i) for i in range(4)]) == ["ok"] * 4
        assert sorted(optuna.get_all_study_names(st.open_storage(url, create=False))) == ["s0", "s1", "s2", "s3"]
        assert not [p for p in (tmp_path / str(attempt) / "runs").iterdir() if p.name.startswith(".")]


def _racing_rdb(monkeypatch, failures: int, error):
    """RDBStorage that fails ``failures`` times with ``error`` (another process creating the schema)."""
    calls = []
    real = st.RDBStorage

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(st, "RDBStorage", flaky)
    monkeypatch.setattr(st.time, "sleep", lambda s: None)
    return calls


@pytest.mark.parametrize("server", ["postgresql", "sqlite"])
def test_a_schema_created_by_a_process_starting_at_the_same_moment_is_waited_for(tmp_path, monkeypatch, server):
    import sqlalchemy

    path = _make_storage(tmp_path / "s.db", trials=1)
    race = (sqlalchemy.exc.IntegrityError("CREATE TYPE studydirection", {}, Exception("duplicate key value"))
            if server == "postgresql" else  # another program (plain Optuna) making the tables of a new file
            sqlalchemy.exc.OperationalError("CREATE TABLE", {}, Exception("table trial_params already exists")))
    calls = _racing_rdb(monkeypatch, 2, race)
    storage = st.open_storage(f"sqlite:///{path}")
    assert len(calls) == 3 and [s.study_name for s in storage.get_all_studies()] == ["a"]


def test_a_schema_error_that_is_no_race_is_one_line(tmp_path, monkeypatch):
    import sqlalchemy

    path = _make_storage(tmp_path / "s.db", trials=1)
    calls = _racing_rdb(monkeypatch, 99, sqlalchemy.exc.ProgrammingError("SELECT", {}, Exception("permission denied")))
    with pytest.raises(SearchError, match="permission denied"):
        st.open_storage(f"sqlite:///{path}")
    assert len(calls) == 1
