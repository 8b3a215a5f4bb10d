"""A client belongs to one event loop: using it from another is a typed error at the call,
as a Celery-style worker shows (each task in a fresh loop); and a client dropped open
warns, naming where it was created (``-X dev`` or ``PYTHONTRACEMALLOC``)."""

from __future__ import annotations

import asyncio
import gc
import os
import queue
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from avaturn_async import AvaturnClient, EventLoopError, sync
from avaturn_async.testing import AvaturnEmulator
from tests.client_support import threaded_emulator


@pytest.fixture
def emu() -> Iterator[AvaturnEmulator]:
    with threaded_emulator() as emulator:
        yield emulator


class CeleryStyleWorker:
    """Runs each task in a fresh event loop (``asyncio.run``), one at a time, in its own
    thread, as a Celery worker does when tasks wrap async code; sync tasks are run by
    a fresh loop in a worker thread of it."""

    def __init__(self) -> None:
        self._tasks: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (item := self._tasks.get()) is not None:
            task, results = item
            try:
                if asyncio.iscoroutinefunction(task):
                    results.put(("ok", asyncio.run(task())))
                else:
                    results.put(("ok", asyncio.run(asyncio.to_thread(task))))
            except BaseException as exc:
                results.put(("error", exc))

    def run(self, task: Callable[[], Any]) -> Any:
        results: queue.Queue[Any] = queue.Queue()
        self._tasks.put((task, results))
        outcome, value = results.get(timeout=30)
        if outcome == "error":
            raise value
        return value

    def stop(self) -> None:
        self._tasks.put(None)
        self._thread.join(timeout=10)


@pytest.fixture
def worker() -> Iterator[CeleryStyleWorker]:
    running = CeleryStyleWorker()
    yield running
    running.stop()


def test_an_async_client_shared_across_tasks_fails_clearly_at_the_second(
    emu: AvaturnEmulator, worker: CeleryStyleWorker
) -> None:
    shared = AvaturnClient(emu.api_key, base_url=emu.base_url)  # a module-level client

    async def task() -> str:
        return (await shared.users.create()).id

    worker.run(task)
    with pytest.raises(EventLoopError, match="another event loop"):
        worker.run(task)
    worker.run(shared.aclose)  # its first loop is gone: closing only marks it closed
    assert (len(emu.users), shared.closed) == (1, True)


def test_an_async_client_made_in_each_task_works(
    emu: AvaturnEmulator, worker: CeleryStyleWorker
) -> None:
    async def task() -> str:
        async with AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
            return (await client.users.create()).id

    ids = [worker.run(task) for _ in range(3)]
    assert sorted(ids) == sorted(emu.users)


def test_a_sync_client_shared_across_tasks_works(
    emu: AvaturnEmulator, worker: CeleryStyleWorker
) -> None:
    with sync.AvaturnClient(emu.api_key, base_url=emu.base_url) as shared:
        ids = [worker.run(lambda: shared.users.create().id) for _ in range(3)]
    assert sorted(ids) == sorted(emu.users)


def test_a_sync_client_called_inside_a_tasks_loop_points_to_the_async_client(
    emu: AvaturnEmulator, worker: CeleryStyleWorker
) -> None:
    with sync.AvaturnClient(emu.api_key, base_url=emu.base_url) as shared:

        async def task() -> str:
            return shared.users.create().id

        with pytest.raises(EventLoopError, match=r"use avaturn_async\.AvaturnClient"):
            worker.run(task)
    assert len(emu.users) == 0


def test_a_client_opened_in_one_loop_refuses_another_even_after_async_with(
    emu: AvaturnEmulator,
) -> None:
    client = AvaturnClient(emu.api_key, base_url=emu.base_url)

    async def open_it() -> None:
        await client.__aenter__()

    async def use_it() -> None:
        await client.users.create()

    asyncio.run(open_it())
    with pytest.raises(EventLoopError):
        asyncio.run(use_it())
    asyncio.run(client.aclose())


def test_an_unused_client_is_dropped_without_a_warning() -> None:
    gc.collect()  # what earlier tests dropped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AvaturnClient("k", base_url="http://127.0.0.1:9")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


DROPPED_OPEN = """
import asyncio, gc
from avaturn_async import AvaturnClient
from avaturn_async.testing import AvaturnEmulator

async def main():
    async with AvaturnEmulator() as emu:
        client = AvaturnClient(emu.api_key, base_url=emu.base_url)  # line 8: created here
        await client.users.create()
        del client
        gc.collect()

asyncio.run(main())
"""

DROPPED_OPEN_SYNC = """
import gc
from avaturn_async.sync import AvaturnClient
from tests.client_support import threaded_emulator

with threaded_emulator() as emu:
    client = AvaturnClient(emu.api_key, base_url=emu.base_url)  # line 7: created here
    client.users.create()
    del client
    gc.collect()
"""


def run_script(tmp_path: Path, source: str, *flags: str, **environ: str) -> str:
    script = tmp_path / "dropped.py"
    script.write_text(textwrap.dedent(source))
    env = {**os.environ, **environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    result = subprocess.run(
        [sys.executable, *flags, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_dropped_open_under_dev_mode_warns_with_where_it_was_created(tmp_path: Path) -> None:
    stderr = run_script(tmp_path, DROPPED_OPEN, "-X", "dev")
    assert "ResourceWarning: unclosed AvaturnClient(" in stderr
    assert "Created at (most recent call last)" in stderr
    assert "line 8" in stderr.split("Created at", 1)[1]


def test_dropped_open_under_tracemalloc_names_where_it_was_created(tmp_path: Path) -> None:
    stderr = run_script(
        tmp_path, DROPPED_OPEN, "-W", "always::ResourceWarning", PYTHONTRACEMALLOC="1"
    )
    warning = stderr.split("ResourceWarning: unclosed AvaturnClient(", 1)[1]
    assert "line 8" in warning.split("Created at", 1)[1]


def test_a_sync_client_dropped_open_warns_with_where_it_was_created(tmp_path: Path) -> None:
    stderr = run_script(tmp_path, DROPPED_OPEN_SYNC, "-X", "dev")
    warning = stderr.split("ResourceWarning: unclosed avaturn_async.sync.AvaturnClient(", 1)[1]
    assert "line 7" in warning.split("Created at", 1)[1]
