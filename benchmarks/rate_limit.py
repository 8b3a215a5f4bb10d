"""Using an API's rate limit to the last request: onboarding against a fixed-window limit.

Run: ``.venv/bin/python benchmarks/rate_limit.py`` (600 rows, R = 60) or ``--quick``
(300 rows). PostgreSQL: the server named by ``AVATURN_TEST_POSTGRES_DSN``, else a
throwaway one started here (``tests/pg_server.py``); each three-worker run gets a
fresh database.

An emulator in this process admits at most R authenticated API requests per
second, a fixed one-second window (``AvaturnEmulator(rate_limit=RateLimit(R, 1))``,
what ``avaturn emulator --rate-limit R`` serves), and answers the rest 429 with the
window's end in ``Retry-After``. Photo uploads go to pre-signed URLs and are not
counted, as on Avaturn. Four runs of ``avaturn onboard MANIFEST`` (real worker
processes, polling for readiness, ``--poll-interval 0.25``):

* ``--rate R``, one worker (SQLite journal), and three workers sharing a
  PostgreSQL journal (and so one budget, ``PostgresRateBudget``);
* without ``--rate`` (the pace learned from 429s), the same two: the three workers
  learn one pace together in their journal's database (``PostgresLearnedPace``).

Measured at the emulator: **admitted/s** is the API requests it admitted over the
run, from its first admitted request to its last, divided by R; **429 %** the share
of API requests it refused. The rows' own pace sets the tail of a run (the last
avatars are waited for, with fewer requests to send), so ``busy admitted/s`` also
says the rate over the part of the run when requests were waiting for their turn
(from the first request until the last row's photos were uploaded).

Targets: with ``--rate R``, admitted/s >= 0.95 R and 429s <= 1 %; without, >= 0.90 R
and <= 3 %.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avaturn_async.batch import write_sample_manifest  # noqa: E402
from avaturn_async.testing import ROUTES, AvaturnEmulator, RateLimit  # noqa: E402

PROCESSING_DELAY = 0.5
POLL = 0.25
# Photo uploads go to pre-signed URLs: the API's limit does not count them.
API_ROUTES = frozenset(ROUTES) - {"upload"}


@contextmanager
def postgres() -> Iterator[str]:
    """The DSN of a server's maintenance database (``postgres``)."""
    given = os.environ.get("AVATURN_TEST_POSTGRES_DSN")
    if given:
        yield given
        return
    spec = importlib.util.spec_from_file_location("pg_server", ROOT / "tests" / "pg_server.py")
    if spec is None or spec.loader is None:
        raise SystemExit("tests/pg_server.py is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.PostgresServer().start()
    try:
        yield server.dsn
    finally:
        server.stop()


async def _fresh_database(dsn: str) -> str:
    import asyncpg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{dsn.rsplit('/', 1)[0]}/{name}"


async def _drop_database(dsn: str, database: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


class Meter:
    """Samples the emulator's counters: when requests were admitted, and refusals."""

    def __init__(self, emulator: AvaturnEmulator) -> None:
        self.emulator = emulator
        self.first: float | None = None
        self.last: float | None = None
        self.busy_until: float | None = None
        self.rows = 0

    def api_requests(self) -> int:
        stats = self.emulator.stats
        return sum(count for route, count in stats.requests.items() if route in API_ROUTES)

    def admitted(self) -> int:
        return self.api_requests() - self.emulator.stats.rate_limited

    async def watch(self) -> None:
        seen = 0
        trace = os.environ.get("RATE_BENCH_TRACE")
        next_print = time.monotonic() + 1
        while True:
            if trace and time.monotonic() >= next_print:
                next_print += 1
                print(f"  admitted {self.admitted()} refused {self.emulator.stats.rate_limited}")
            now, admitted = time.monotonic(), self.admitted()
            if admitted != seen:
                self.first = now if self.first is None else self.first
                self.last, seen = now, admitted
            if self.busy_until is None and self.emulator.stats.uploads >= self.rows:
                self.busy_until = now
            await asyncio.sleep(0.01)


async def _workers(commands: list[list[str]], env: dict[str, str]) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        for command in commands
    ]
    for process in processes:
        _, err = await process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"a worker failed ({process.returncode}): {err.decode()[-2000:]}")


async def run(rows: int, rate: int, workers: int, paced: bool, dsn: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="avaturn-rate-") as tmp:
        manifest = write_sample_manifest(tmp, rows)
        journal = str(Path(tmp) / "j.db") if dsn is None else dsn
        limit = RateLimit(requests=rate, per=1.0)
        async with AvaturnEmulator(processing_delay=PROCESSING_DELAY, rate_limit=limit) as emu:
            env = {**os.environ, "PYTHONPATH": str(ROOT), "AVATURN_BASE_URL": emu.base_url,
                   "AVATURN_API_KEY": emu.api_key}
            command = [sys.executable, "-m", "avaturn_async", "onboard", str(manifest),
                       "--journal", journal, "--progress", "none", "--poll-interval", str(POLL)]
            if paced:
                command += ["--rate", str(rate)]
            meter = Meter(emu)
            meter.rows = rows
            watching = asyncio.get_running_loop().create_task(meter.watch())
            try:
                await _workers([command] * workers, env)
            finally:
                watching.cancel()
            if not len(emu.users) == len(emu.avatars) == rows:
                raise SystemExit(f"{len(emu.users)} users, {len(emu.avatars)} avatars for {rows}")
            if meter.first is None or meter.last is None:
                raise SystemExit("no API request was admitted")
            total, refused = meter.api_requests(), emu.stats.rate_limited
            admitted = total - refused
            span = max(meter.last - meter.first, 1e-9)
            return {
                "admitted_per_r": admitted / span / rate,
                "refused_percent": 100.0 * refused / total,
                "span": span,
                "requests": total,
            }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 rows instead of 600")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--rate", type=int, default=60, help="the emulator's limit R")
    parser.add_argument("--only", choices=("paced", "learned"), help="run only these two")
    args = parser.parse_args()
    rows = args.rows or (300 if args.quick else 600)
    print(f"{rows} rows against a fixed window of {args.rate} API requests per second")
    print(f"{'run':<34} {'admitted/s / R':>15} {'429 %':>7} {'API requests':>13} {'seconds':>8}")
    targets = {True: (0.95, 1.0), False: (0.90, 3.0)}
    failed = False
    with postgres() as server:
        for paced in [p for p in (True, False) if args.only != ("learned" if p else "paced")]:
            for workers in (1, 3):
                database = await _fresh_database(server) if workers > 1 else None
                try:
                    figures = await run(rows, args.rate, workers, paced, database)
                finally:
                    if database is not None:
                        await _drop_database(server, database)
                name = f"{'--rate R' if paced else 'learned pace'}, {workers} worker(s)"
                low, high = targets[paced]
                ok = figures["admitted_per_r"] >= low and figures["refused_percent"] <= high
                failed = failed or not ok
                print(f"{name:<34} {figures['admitted_per_r']:>15.3f} "
                      f"{figures['refused_percent']:>7.2f} {figures['requests']:>13.0f} "
                      f"{figures['span']:>8.1f}  {'ok' if ok else 'MISSED'} "
                      f"(target >= {low:.2f}, <= {high:g} %)")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    asyncio.run(main())
