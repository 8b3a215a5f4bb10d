"""Ordered dispatch end to end: three worker processes on one inbox (a SQLite file, a
PostgreSQL database), 50 avatars with several deliveries each, stored through two
receivers while the workers run, a few avatars at a time (so that one avatar's
deliveries are stored close together, which unordered dispatch would overlap).

Each worker logs every handler run with its start and end on the machine's
monotonic clock (shared by every process), so the test can see what overlapped.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

import avaturn_async
from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import WebhookInbox, WebhookPipeline, WebhookRouter, WebhookVerifier
from tests.inbox_support import eventually, open_inbox

REPO_ROOT = Path(avaturn_async.__file__).resolve().parents[1]
SECRET = make_webhook_secret()
AVATARS = 50
PER_AVATAR = 6
WORKERS = 3

WORKER = """\
import json, os, random, sys, time
import anyio
from avaturn_async.webhooks import WebhookInbox, WebhookRouter

async def main() -> None:
    db, log, lease, hang_on = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    if db.startswith("postgresql://"):
        from avaturn_async.postgres import PostgresInbox
        inbox = PostgresInbox(db)
    else:
        inbox = WebhookInbox(db)
    router = WebhookRouter()
    out = open(log, "a", buffering=1)

    @router.on_any
    async def record(event) -> None:
        if event.id == hang_on and not os.path.exists(log + ".hung"):
            open(log + ".hung", "w").close()   # the first run of this one never ends
            await anyio.sleep_forever()
        start = time.monotonic_ns()
        await anyio.sleep(random.uniform(0.005, 0.03))   # uneven handlers
        end = time.monotonic_ns()
        line = {"avatar": event.avatar_id, "render": event.id, "start": start, "end": end,
                "pid": os.getpid()}
        out.write(json.dumps(line) + "\\n")

    async with inbox, inbox.worker(router, concurrency=4, poll_interval=0.2, lease=lease):
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)   # until the parent closes stdin

anyio.run(main)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_dsn"))
    return str(tmp_path / "inbox.db")


async def start_worker(
    script: Path, database: str, log: Path, *, lease: float = 30.0, hang_on: str = "-"
) -> Process:
    """A worker process; with ``hang_on``, its first run of that render never ends."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])}
    command = [sys.executable, str(script), database, str(log), str(lease), hang_on]
    process = await anyio.open_process(command, env=env)
    assert process.stdout is not None
    with anyio.fail_after(30):
        line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 200)
    assert line == b"ready", f"worker did not start: {line!r}"
    return process


async def stop_worker(process: Process) -> None:
    assert process.stdin is not None
    await process.stdin.aclose()
    with anyio.fail_after(30):
        await process.wait()
    await process.aclose()


async def send_avatar(pipelines: list[WebhookPipeline], avatar: int) -> None:
    """One avatar's deliveries, one after another, alternating between the receivers."""
    for n in range(PER_AVATAR):
        name = f"avatar-{avatar}-{n}"
        event = make_render_ready(avatar_id=f"avatar-{avatar}", render_id=name)
        response = await pipelines[n % 2].handle(*sign_webhook(event, SECRET, msg_id=name))
        assert response.status == 202
        await anyio.sleep(random.uniform(0, 0.002))


def read_runs(logs: list[Path]) -> list[dict[str, Any]]:
    """Every finished handler run the workers logged."""
    lines = [line for log in logs if log.exists() for line in log.read_text().splitlines()]
    return [json.loads(line) for line in lines]


def most_at_once(runs: list[dict[str, Any]]) -> int:
    """The most handler runs in progress at one moment, any avatars."""
    edges = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs])
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak


async def store_and_dispatch(tmp_path: Path, database: str) -> tuple[list[Any], dict[str, int]]:
    """Run the workload; every handler run, and each delivery's inbox id."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    logs = [tmp_path / f"runs-{n}.log" for n in range(WORKERS)]
    async with open_inbox(database) as installer:  # the schema, before anyone races for it
        await installer.counts()
    workers = [await start_worker(script, database, log) for log in logs]
    receivers = [open_inbox(database), open_inbox(database)]
    try:
        pipelines = [
            WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter(), inbox=r) for r in receivers
        ]
        # Five avatars at a time, so that an avatar's deliveries are stored close
        # together: unordered workers would claim several of one avatar at once.
        for first in range(0, AVATARS, 5):
            async with anyio.create_task_group() as group:
                for avatar in range(first, first + 5):
                    group.start_soon(send_avatar, pipelines, avatar)

        async def all_done(inbox: WebhookInbox = receivers[0]) -> bool:
            return (await inbox.counts())["done"] == AVATARS * PER_AVATAR

        await eventually(all_done, deadline=120)
        records = await receivers[0].list(limit=AVATARS * PER_AVATAR)
    finally:
        for worker in workers:
            await stop_worker(worker)
        for receiver in receivers:
            await receiver.aclose()
    return read_runs(logs), {r.webhook_id or "": r.id for r in records}


@pytest.mark.slow
async def test_three_workers_run_each_avatars_deliveries_one_at_a_time_in_stored_order(
    tmp_path: Path, database: str
) -> None:
    runs, inbox_ids = await store_and_dispatch(tmp_path, database)
    by_avatar: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_avatar[run["avatar"]].append(run)
    overlaps, reordered = [], []
    for avatar, avatar_runs in by_avatar.items():
        avatar_runs.sort(key=lambda run: run["start"])
        ids = [inbox_ids[run["render"]] for run in avatar_runs]
        if ids != sorted(ids) or [r["render"] for r in avatar_runs] != [
            f"{avatar}-{n}" for n in range(PER_AVATAR)
        ]:
            reordered.append(avatar)
        for before, after in itertools.pairwise(avatar_runs):
            if after["start"] < before["end"]:
                overlaps.append((before["render"], after["render"]))
    assert (overlaps, reordered) == ([], [])
    assert sorted(run["render"] for run in runs) == sorted(inbox_ids)  # each exactly once
    # ...while different avatars ran side by side, in every worker.
    assert most_at_once(runs) > WORKERS
    assert len({run["pid"] for run in runs}) == WORKERS


@pytest.mark.slow
async def test_an_avatars_next_delivery_waits_while_a_killed_workers_delivery_is_taken_over(
    tmp_path: Path, database: str
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    logs = [tmp_path / "runs-0.log", tmp_path / "runs-1.log"]
    async with open_inbox(database) as inbox:
        doomed = await start_worker(script, database, logs[0], lease=1.0, hang_on="x-0")
        pipeline = WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter(), inbox=inbox)
        for n in range(3):
            event = make_render_ready(avatar_id="avatar-x", render_id=f"x-{n}")
            await pipeline.handle(*sign_webhook(event, SECRET, msg_id=f"x-{n}"))

        async def hung() -> bool:
            return await anyio.Path(f"{logs[0]}.hung").exists()

        await eventually(hung)
        doomed.kill()
        await doomed.wait()
        await doomed.aclose()
        survivor = await start_worker(script, database, logs[1], lease=1.0)
        try:

            async def all_done() -> bool:
                return (await inbox.counts())["done"] == 3

            await eventually(all_done, deadline=30)
        finally:
            await stop_worker(survivor)
        attempts = {r.webhook_id: r.attempts for r in await inbox.list(limit=3)}
    runs = sorted(read_runs(logs), key=lambda run: run["start"])
    assert [run["render"] for run in runs] == ["x-0", "x-1", "x-2"]
    assert runs[0]["end"] <= runs[1]["start"]
    assert attempts == {"x-0": 2, "x-1": 1, "x-2": 1}
