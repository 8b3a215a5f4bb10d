"""``SQLiteThread``: one connection, one worker thread, writes group-committed."""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from avaturn_async._sqlite import SQLiteThread


class Table:
    """A one-table handle that records which threads opened and used it."""

    def __init__(self, path: Path) -> None:
        self.opened_in = threading.get_ident()
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("CREATE TABLE IF NOT EXISTS items (value INTEGER NOT NULL)")
        self.used_in: set[int] = set()
        self.closed = threading.Event()

    def close(self) -> None:
        self.connection.close()
        self.closed.set()


def add(table: Table, value: int) -> int:
    table.used_in.add(threading.get_ident())
    table.connection.execute("INSERT INTO items (value) VALUES (?)", (value,))
    return value * 10


def add_then_fail(table: Table, value: int) -> int:
    add(table, value)
    raise ValueError(f"poison {value}")


def values(table: Table) -> list[int]:
    table.used_in.add(threading.get_ident())
    return [row[0] for row in table.connection.execute("SELECT value FROM items ORDER BY value")]


def hold(table: Table, release: threading.Event) -> None:
    release.wait(10)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SQLiteThread[Table]]:
    path = tmp_path / "items.db"
    opened = SQLiteThread(lambda: Table(path))
    yield opened
    opened.close()


Write = Callable[[Table, int], int]


async def _while_held(db: SQLiteThread[Table], *writes: tuple[Write, int]) -> dict[int, object]:
    """Queue ``writes`` while the thread is busy, so they run as one group; each outcome."""
    release, outcomes = threading.Event(), dict[int, object]()

    async def write(fn: Write, value: int) -> None:
        try:
            outcomes[value] = await db.write(fn, value)
        except ValueError as exc:
            outcomes[value] = exc

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(db.read, hold, release)
        await anyio.wait_all_tasks_blocked()
        for fn, value in writes:
            tasks.start_soon(write, fn, value)
        await anyio.wait_all_tasks_blocked()
        release.set()
    return outcomes


async def test_writes_queued_together_share_one_commit_and_each_gets_its_result(
    db: SQLiteThread[Table],
) -> None:
    outcomes = await _while_held(db, *[(add, value) for value in range(5)])
    assert outcomes == {value: value * 10 for value in range(5)}
    assert db.commits == 1


async def test_a_failing_write_fails_alone_and_its_group_is_retried_without_it(
    db: SQLiteThread[Table],
) -> None:
    outcomes = await _while_held(db, (add, 1), (add_then_fail, 2), (add, 3))
    assert (outcomes[1], outcomes[3]) == (10, 30)
    assert str(outcomes[2]) == "poison 2"
    assert await db.read(values) == [1, 3]  # the failed write's row was rolled back


async def test_the_handle_is_opened_and_used_in_one_thread_only(db: SQLiteThread[Table]) -> None:
    await db.write(add, 1)
    await db.read(values)
    table = await db.read(lambda table: table)
    assert table.used_in == {table.opened_in}
    assert table.opened_in != threading.get_ident()


async def test_close_finishes_queued_writes_then_closes_the_handle(
    db: SQLiteThread[Table], tmp_path: Path
) -> None:
    table = await db.read(lambda table: table)
    async with anyio.create_task_group() as tasks:
        for value in range(3):
            tasks.start_soon(db.write, add, value)
        await anyio.wait_all_tasks_blocked()
        db.close()
    assert table.closed.is_set()
    with sqlite3.connect(tmp_path / "items.db") as check:
        assert check.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 3


async def test_a_call_after_close_raises_as_a_closed_connection_would(
    db: SQLiteThread[Table],
) -> None:
    db.close()
    db.close()  # idempotent
    with pytest.raises(sqlite3.ProgrammingError):
        await db.read(values)


async def test_a_write_is_made_and_awaited_even_if_its_caller_is_cancelled(
    db: SQLiteThread[Table],
) -> None:
    release = threading.Event()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(db.read, hold, release)
        await anyio.wait_all_tasks_blocked()
        with anyio.CancelScope() as scope:
            scope.cancel()
            release.set()
            assert await db.write(add, 7) == 70  # shielded: the outcome comes back
    assert await db.read(values) == [7]


def test_an_error_opening_the_handle_is_raised_by_the_constructor() -> None:
    def broken() -> Table:
        raise OSError("no such disk")

    with pytest.raises(OSError, match="no such disk"):
        SQLiteThread(broken)


async def test_an_unclosed_thread_that_is_collected_closes_its_handle(tmp_path: Path) -> None:
    db = SQLiteThread(lambda: Table(tmp_path / "items.db"))
    table = await db.read(lambda table: table)
    del db
    gc.collect()
    assert table.closed.wait(10)


def test_the_handle_can_stay_open_for_its_owner(tmp_path: Path) -> None:
    table = Table(tmp_path / "items.db")
    SQLiteThread(lambda: table, close_handle=False).close()
    assert not table.closed.is_set()


async def test_a_call_after_a_fork_raises_instead_of_waiting_for_a_thread_that_is_gone(
    db: SQLiteThread[Table], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as in a forked child
    with pytest.raises(RuntimeError, match="fork"):
        await db.read(values)
