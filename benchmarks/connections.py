"""PostgreSQL connections per process: one connector for all five backends.

Run: ``.venv/bin/python benchmarks/connections.py [--quick] [--processes N] [--dsn DSN]``
(about 40 s; ``--quick`` ~20 s). Without ``--dsn`` a throwaway server with
PostgreSQL's default ``max_connections=100`` is started with ``tests/pg_server.py``.

N processes (default 10) each run ``tests/pg_budget_worker.py``: every backend
(inbox with its worker, duplicate guard, event hub, rate-limit gate, journal)
kept busy at once by 8 tasks each, through one ``PostgresConnector`` with the
default pool size. ``pg_stat_activity`` is sampled every 20 ms, by each process's
``application_name``. Reported: the peak connections of one process, of all of
them together, and what is left of ``max_connections``. Then one process again
with each backend given the DSN (a connector each: the old shape), for comparison.
Target: at most pool size + 1 per process; N=10 fits in 100 with room to spare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from avaturn_async.postgres import DEFAULT_POOL_SIZE
from tests.pg_server import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "pg_budget_worker.py"


async def sample(dsn: str, prefix: str, stop: asyncio.Event) -> tuple[Counter[str], int]:
    peaks: Counter[str] = Counter()
    total = 0
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            rows = await conn.fetch(
                "SELECT application_name AS name, count(*) AS n FROM pg_stat_activity"
                " WHERE application_name LIKE $1 || '%' GROUP BY 1", prefix,
            )
            for row in rows:
                peaks[row["name"]] = max(peaks[row["name"]], row["n"])
            total = max(total, sum(row["n"] for row in rows))
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    return peaks, total


async def run_workers(
    dsn: str, prefix: str, count: int, seconds: float, mode: str
) -> tuple[Counter[str], int, int]:
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample(dsn, prefix, stop))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), dsn, f"{prefix}{n}", str(seconds), mode,
            stdout=asyncio.subprocess.PIPE, env=env,
        )
        for n in range(count)
    ]
    operations = 0
    for worker in workers:
        out, _ = await worker.communicate()
        if worker.returncode != 0:
            raise SystemExit(f"a worker failed (exit {worker.returncode})")
        operations += int(out.split()[-1])
    stop.set()
    peaks, total = await sampler
    return peaks, total, operations


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--dsn")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 8.0
    server = None if args.dsn else PostgresServer(max_connections=100).start()
    dsn = args.dsn or server.dsn  # type: ignore[union-attr]
    try:
        admin = await asyncpg.connect(dsn)
        max_connections = int(await admin.fetchval("SHOW max_connections"))
        await admin.close()
        started = time.monotonic()
        peaks, total, operations = await run_workers(
            dsn, "avaturn-bench-", args.processes, seconds, "shared"
        )
        took = time.monotonic() - started
        print(f"{args.processes} processes x 5 backends, one connector each, pool size "
              f"{DEFAULT_POOL_SIZE} (default), {seconds:g} s of load, {operations} operations "
              f"in {took:.1f} s")
        target = DEFAULT_POOL_SIZE + 1
        print(f"  connections per process: peak {max(peaks.values())} "
              f"(min peak {min(peaks.values())}; target <= pool size + 1 = {target})")
        print(f"  all processes together:  peak {total} of max_connections {max_connections} "
              f"({max_connections - total} to spare)")
        separate, _, _ = await run_workers(dsn, "avaturn-separate-", 1, seconds, "separate")
        print(f"  for comparison, one process giving each backend the DSN (a connector "
              f"each): peak {max(separate.values())} (at most 5 x {DEFAULT_POOL_SIZE} + 3)")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
