"""Scaling out on PostgreSQL: onboarding rows/s with one worker vs three on one journal.

Run: ``.venv/bin/python benchmarks/scale.py`` (160 rows, 3 rounds) or ``--quick``
(96 rows, 2 rounds). PostgreSQL: the server named by ``AVATURN_TEST_POSTGRES_DSN``,
else a throwaway one started here (``tests/pg_server.py``); each run gets a fresh
database.

Both contenders run the same command, ``avaturn onboard MANIFEST --journal
postgresql://... --concurrency 2 --max-in-flight 16 --poll-interval 0.5``,
against one emulator in its own process with a 2 s processing delay, polling
(no webhooks):

* **one**: one worker process does the whole batch;
* **three**: three worker processes share the batch through the journal.

Each worker is capped as one machine would be (the same flags for every
worker), so the figure says whether adding workers adds throughput, and what
the shared journal's claims, leases and fenced writes cost. The caps keep the
run bound by the API's latency, as a real batch is, rather than by this small
machine's CPU, which the emulator, PostgreSQL and the workers share. Rows/s are taken
from the journal's own clock, from the first run's start to the last row's
ready step, so interpreter start-up is not counted for either. A round runs
both once, in an order that alternates between rounds; the ratio is the median
over rounds of each round's three/one ratio. Target: at least 2x.

The inbox sections (deliveries acknowledged per second, SQLite inbox vs
``PostgresInbox``; dispatch with one worker vs three) live in
``benchmarks/scale_inbox.py`` and run here after the onboarding section, on the
same server (``--no-inbox`` skips them).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

API_KEY = "emulator-key"
PROCESSING_DELAY = 2.0
CONCURRENCY = 2
IN_FLIGHT = 16
POLL = 0.5


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


@contextmanager
def postgres() -> Iterator[str]:
    """The DSN of a server's maintenance database (``postgres``)."""
    given = os.environ.get("AVATURN_TEST_POSTGRES_DSN")
    if given:
        yield given
        return
    from tests.pg_server import PostgresServer

    server = PostgresServer().start()
    try:
        yield server.dsn
    finally:
        server.stop()


async def _admin(dsn: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def fresh_database(server_dsn: str) -> Iterator[str]:
    name = f"scale_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server_dsn.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def emulator_process() -> Iterator[str]:
    """A fresh emulator in its own process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "avaturn_async", "emulator", "--port", "0",
         "--api-key", API_KEY, "--processing-delay", str(PROCESSING_DELAY)],
        stdout=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        assert process.stdout is not None
        for _ in range(10):
            found = re.search(r"http://[\d.]+:\d+", process.stdout.readline())
            if found is not None:
                break
        else:
            raise SystemExit("the emulator did not start")
        yield found.group(0)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _journal_seconds(dsn: str) -> float:
    """From the first run's start to the last row's ready step, by the database's clock."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        ready = await conn.fetchval(
            "SELECT count(*) FROM avaturn_journal_rows WHERE state = 'ready'"
        )
        seconds = await conn.fetchval(
            "SELECT extract(epoch FROM (SELECT max(updated_at) FROM avaturn_journal_rows)"
            " - (SELECT min(started_at) FROM avaturn_journal_runs))::float8"
        )
    finally:
        await conn.close()
    return float(seconds) if ready else float("nan")


def run_workers(server_dsn: str, manifest: Path, rows: int, workers: int) -> dict[str, float]:
    """One batch of ``rows`` onboarded by ``workers`` processes; rows/s and wall seconds."""
    with emulator_process() as base_url, fresh_database(server_dsn) as dsn:
        command = [sys.executable, "-m", "avaturn_async", "onboard", str(manifest),
                   "--journal", dsn, "--concurrency", str(CONCURRENCY),
                   "--max-in-flight", str(IN_FLIGHT), "--poll-interval", str(POLL),
                   "--progress", "none"]
        env = _env(AVATURN_BASE_URL=base_url, AVATURN_API_KEY=API_KEY)
        wall = time.perf_counter()
        processes = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
            for _ in range(workers)
        ]
        outputs = [process.communicate() for process in processes]
        wall = time.perf_counter() - wall
        for process, (out, err) in zip(processes, outputs, strict=True):
            if process.returncode != 0:
                raise SystemExit(f"a worker failed ({process.returncode}):\n{out}{err}")
        seconds = asyncio.run(_journal_seconds(dsn))
    return {"rows_per_s": rows / seconds, "wall_seconds": wall}


def onboarding_section(server_dsn: str, rows: int, rounds: int) -> float:
    from avaturn_async.batch import write_sample_manifest

    print(f"onboarding {rows} rows; per worker {CONCURRENCY} rows creating at once and "
          f"{IN_FLIGHT} in flight; {PROCESSING_DELAY:g} s processing; PostgreSQL journal")
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        manifest = write_sample_manifest(Path(folder), rows)
        for round_number in range(rounds):
            order = (1, 3) if round_number % 2 == 0 else (3, 1)
            figures = {n: run_workers(server_dsn, manifest, rows, n) for n in order}
            one, three = figures[1]["rows_per_s"], figures[3]["rows_per_s"]
            ratios.append(three / one)
            print(f"  round {round_number + 1}: one worker {one:6.1f} rows/s "
                  f"({figures[1]['wall_seconds']:.1f} s wall), three workers {three:6.1f} "
                  f"rows/s ({figures[3]['wall_seconds']:.1f} s wall): {three / one:.2f}x")
    ratio = statistics.median(ratios)
    verdict = "meets" if ratio >= 2.0 else "MISSES"
    print(f"  median of paired rounds: three workers / one = {ratio:.2f}x "
          f"({verdict} the 2x target)")
    return ratio


def inbox_sections(server_dsn: str, quick: bool) -> None:
    """Run ``benchmarks/scale_inbox.py``'s sections when that file exists."""
    path = Path(__file__).with_name("scale_inbox.py")
    if not path.exists():
        print("\n(inbox sections: benchmarks/scale_inbox.py is not here yet)")
        return
    spec = importlib.util.spec_from_file_location("scale_inbox", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print()
    run = getattr(module, "run", None)
    if run is not None:  # async run(dsn, quick): the server is ours, it adds databases
        asyncio.run(run(server_dsn, quick))
    else:
        module.main(["--dsn", server_dsn, *(["--quick"] if quick else [])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="96 rows, 2 rounds")
    parser.add_argument("--rows", type=int, help="rows per batch (default 160)")
    parser.add_argument("--rounds", type=int, help="paired rounds (default 3)")
    parser.add_argument("--no-inbox", action="store_true", help="skip the inbox sections")
    args = parser.parse_args()
    rows = args.rows or (96 if args.quick else 160)
    rounds = args.rounds or (2 if args.quick else 3)
    with postgres() as server_dsn:
        onboarding_section(server_dsn, rows, rounds)
        if not args.no_inbox:
            inbox_sections(server_dsn, args.quick)


if __name__ == "__main__":
    main()
