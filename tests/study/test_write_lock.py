"""The SQLite write lock (study.db.SqliteWriteLock): one writer at a time across threads and
processes, and a forked process (gunicorn --preload) does not share its parent's lock."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from pathlib import Path

import pytest

from study.db import SqliteWriteLock, make_engine, sqlite_write_lock

fcntl = pytest.importorskip("fcntl")


def _add_slowly(db: str, counter: Path, n: int) -> None:
    """n read-modify-write increments of a counter file, each under the lock, with a pause
    between the read and the write that loses updates unless the lock excludes other writers."""
    lock = SqliteWriteLock(db)
    for _ in range(n):
        with lock:
            value = int(counter.read_text())
            time.sleep(0.001)
            counter.write_text(str(value + 1))


def test_writers_in_threads_and_processes_take_turns(tmp_path: Path) -> None:
    db = str(tmp_path / "study.db")
    counter = tmp_path / "counter"
    counter.write_text("0")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_add_slowly, args=(db, counter, 40)) for _ in range(2)]
    for p in procs:
        p.start()
    threads = [threading.Thread(target=_add_slowly, args=(db, counter, 40)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert int(counter.read_text()) == 4 * 40
    assert (tmp_path / "study.db.writelock").exists()


def _take_and_report(lock: SqliteWriteLock, out: mp.Queue) -> None:
    with lock:
        out.put(time.monotonic())


def test_a_forked_child_waits_for_its_parents_lock(tmp_path: Path) -> None:
    lock = SqliteWriteLock(str(tmp_path / "study.db"))
    with lock:
        pass  # the parent has opened its lock file before the fork
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    with lock:
        child = ctx.Process(target=_take_and_report, args=(lock, out))
        child.start()
        time.sleep(0.5)
        released = time.monotonic()
    acquired = out.get(timeout=30)
    child.join(30)
    assert acquired >= released  # an inherited descriptor would have let it in at once


def test_one_lock_per_database(tmp_path: Path) -> None:
    a = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    b = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        assert sqlite_write_lock(a) is sqlite_write_lock(a)
        assert sqlite_write_lock(a) is not sqlite_write_lock(b)
    finally:
        a.dispose()
        b.dispose()
