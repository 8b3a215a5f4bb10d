"""Batch onboarding throughput, client CPU and memory: ``avaturn_async.batch.onboard``
against hand-written aiohttp code doing the same work.

Run: ``.venv/bin/python benchmarks/onboarding.py`` (1,000 and 10,000 rows, 3
rounds) or ``--quick`` (300 and 3,000 rows); ``--profile sdk`` (or ``baseline``)
runs one contender under pyinstrument instead (``pip install pyinstrument``).

Contenders, each in its own client process against a fresh emulator in another
(``AvaturnEmulator``, processing delay 0, its avatar listing indexed by user):

* **sdk**: ``onboard()`` reading a CSV manifest lazily, with its SQLite journal,
  photo checks and the client's retry loop; polling (no webhooks).
* **baseline** (the target's reference): what a careful hand-written pipeline
  does for the same durability: per row ``POST users/new``, ``POST avatars/new``,
  the multipart upload of the three photos read from disk for that row (in a
  worker thread, as the SDK reads them), then polling List User Avatars; and
  each step recorded in an SQLite file (WAL, ``synchronous=NORMAL``, one commit
  per step: row read, user requested, user created, avatar created, photos
  sent, ready), so that a crash could be resumed.
* **bare** (for information): the baseline without the SQLite record.

All keep at most 16 requests and 128 rows in flight, and poll from 50 ms after
the upload, growing by 1.5x, until the avatar is ready. With two or more CPUs
the emulator is pinned to CPU 0 and the client to CPU 1 (``sched_setaffinity``
in each child), so the emulator does not take the client's CPU.

Figures per run: rows/s (wall clock of the run), the client's CPU per row
(``time.process_time()`` around the run inside the client process: interpreter
start-up and imports are not counted) and its peak RSS (``VmHWM``). A round runs
every contender once per row count, in an order that rotates between rounds;
the ratios are the median over rounds of each round's ratio. Targets: SDK CPU
per row at most 1.25x the baseline's, SDK rows/s at least 0.85x the baseline's,
and the SDK's peak RSS at the larger row count at most 1.3x that at the smaller.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

API_KEY = "emulator-key"
IN_FLIGHT = 16
ROWS_IN_PROGRESS = 8 * IN_FLIGHT
# onboard()'s concurrency bounds rows in the create-and-upload stage, which also
# wait for journal commits; 4x the request limit lets the client's own limit of
# 16 requests in flight be what binds, as the connector's limit does for the baseline.
SDK_CONCURRENCY = 4 * IN_FLIGHT
FIRST_POLL = 0.05
CONTENDERS = ("baseline", "bare", "sdk")
EMULATOR_CPU, CLIENT_CPU = 0, 1


def pin(cpu: int) -> bool:
    """Run this process on ``cpu`` only, when the machine has more than one."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return False
    os.sched_setaffinity(0, {cpu})
    return True


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------- the baselines


class StepLog:
    """The baseline's durable record: one commit per step, as the SDK's journal."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE rows (key TEXT PRIMARY KEY, state TEXT NOT NULL, user_id TEXT,"
            " avatar_id TEXT, updated_at REAL NOT NULL)"
        )
        self.db.execute(
            "CREATE TABLE steps (id INTEGER PRIMARY KEY, key TEXT NOT NULL,"
            " step TEXT NOT NULL, at REAL NOT NULL)"
        )

    def step(self, key: str, state: str, **columns: str) -> None:
        now = time.time()
        sets = "".join(f", {name} = ?" for name in columns)
        with self.db:  # one transaction, one commit
            self.db.execute("BEGIN")
            self.db.execute(
                f"INSERT INTO rows (key, state, updated_at) VALUES (?, ?, ?)"
                f" ON CONFLICT (key) DO UPDATE SET state = excluded.state,"
                f" updated_at = excluded.updated_at{sets}",
                (key, state, now, *columns.values()),
            )
            self.db.execute(
                "INSERT INTO steps (key, step, at) VALUES (?, ?, ?)", (key, state, now)
            )


async def run_baseline(base_url: str, rows: int, log: StepLog | None) -> None:
    """Plain aiohttp, the same request sequence as the SDK; ``log``: record each step."""
    import aiohttp

    from avaturn_async.samples import sample_photo_paths

    paths = sample_photo_paths()
    fields = ("image-frontal", "image-side-1", "image-side-2")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    api = f"{base_url}/api/v1"

    def record(key: str, state: str, **columns: str) -> None:
        if log is not None:
            log.step(key, state, **columns)

    def read_photos() -> list[bytes]:
        return [path.read_bytes() for path in paths]

    async def one(http: aiohttp.ClientSession, key: str) -> None:
        record(key, "new")
        record(key, "user_requested")
        async with http.post(f"{api}/users/new", headers=headers) as answer:
            user_id = (await answer.json())["id"]
        record(key, "avatar_requested", user_id=user_id)
        body = {"user_id": user_id}
        async with http.post(f"{api}/avatars/new", json=body, headers=headers) as answer:
            created = await answer.json()
        record(key, "uploading", avatar_id=created["avatar_id"])
        photos = await asyncio.to_thread(read_photos)
        form = aiohttp.FormData()
        for field, data in zip(fields, photos, strict=True):
            form.add_field(field, data, filename=f"{field}.jpg", content_type="image/jpeg")
        form.add_field("body-type", "female")
        form.add_field("telephoto", "false")
        async with http.post(created["upload_url"], data=form) as answer:
            answer.raise_for_status()
        record(key, "processing")
        delay = FIRST_POLL
        while True:
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 1.5)
            url = f"{api}/users/{user_id}/avatars"
            params = {"include_not_ready": "true"}
            async with http.get(url, params=params, headers=headers) as answer:
                items = await answer.json()
            if any(i["id"] == created["avatar_id"] and i["status"] == "ready" for i in items):
                record(key, "ready")
                return

    async def worker(http: aiohttp.ClientSession, todo: Iterator[int]) -> None:
        for number in todo:
            await one(http, f"row-{number:06d}")

    # The connector caps requests in flight; more rows than that are in progress,
    # so that rows waiting for their avatar do not hold up the others (as in the SDK).
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector) as http:
        todo = iter(range(rows))  # shared: each worker takes the next row
        await asyncio.gather(*(worker(http, todo) for _ in range(ROWS_IN_PROGRESS)))


# ---------------------------------------------------------------- the SDK


async def run_sdk(base_url: str, rows: int, folder: Path) -> None:
    """``onboard()`` on a generated CSV manifest."""
    from avaturn_async import AvaturnClient
    from avaturn_async.batch import Manifest, OnboardSettings, onboard

    async with AvaturnClient(
        api_key=API_KEY, base_url=base_url, max_concurrency=IN_FLIGHT
    ) as client:
        with Manifest(folder / "manifest.csv") as source:
            summary = await onboard(
                client,
                source,
                journal=folder / "onboard.db",
                settings=OnboardSettings(
                    concurrency=SDK_CONCURRENCY,
                    max_in_flight=ROWS_IN_PROGRESS,
                    poll_interval=FIRST_POLL,
                ),
            )
    if summary.ready != rows:
        raise SystemExit(f"SDK run incomplete: {summary.format()}")


# ---------------------------------------------------------------- one client process


def contender(kind: str, base_url: str, rows: int, folder: Path) -> Any:
    """The coroutine of one run of ``kind``; everything it needs is imported first."""
    import aiohttp  # noqa: F401  (imports are start-up, not the run)
    import anyio.lowlevel

    import avaturn_async.batch  # noqa: F401

    asyncio.run(anyio.lowlevel.checkpoint())  # anyio imports its backend on first use

    if kind == "sdk":
        from avaturn_async.batch import write_sample_manifest

        write_sample_manifest(folder, rows)
        return run_sdk(base_url, rows, folder)
    log = StepLog(folder / "steps.db") if kind == "baseline" else None
    return run_baseline(base_url, rows, log)


def child(kind: str, base_url: str, rows: int, profile: bool) -> None:
    """Run one contender in this process and print its figures as JSON."""
    pinned = pin(CLIENT_CPU)
    with tempfile.TemporaryDirectory() as tmp:
        run = contender(kind, base_url, rows, Path(tmp))
        profiler = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="disabled")
            profiler.start()
        cpu, wall = time.process_time(), time.perf_counter()
        asyncio.run(run)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False), file=sys.stderr)
    print(json.dumps({
        "seconds": wall, "cpu_seconds": cpu, "peak_rss_mib": peak_rss_mib(), "pinned": pinned,
    }))


def emulator_child() -> None:
    """Serve a fresh emulator, pinned to its own CPU, until terminated."""
    pin(EMULATOR_CPU)
    from avaturn_async.testing import AvaturnEmulator

    async def serve() -> None:
        emulator = AvaturnEmulator(
            processing_delay=0, render_delay=0, export_delay=0, api_key=API_KEY
        )
        await emulator.start()
        print(emulator.base_url, flush=True)
        await emulator.serve_forever()

    asyncio.run(serve())


# ---------------------------------------------------------------- orchestration


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far, or NaN off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def emulator_process() -> Iterator[tuple[str, int]]:
    """A fresh emulator in its own process; yields its base URL and pid."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--emulator-child"], stdout=subprocess.PIPE, text=True,
        env=_env(),
    )
    try:
        assert process.stdout is not None
        found = re.search(r"http://[\d.]+:\d+", process.stdout.readline())
        if found is None:
            raise SystemExit("the emulator did not start")
        yield found.group(0), process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(kind: str, rows: int, profile: bool = False) -> dict[str, float]:
    with emulator_process() as (base_url, pid):
        command = [sys.executable, __file__, "--child", kind, "--rows", str(rows),
                   "--base-url", base_url]
        before = process_cpu(pid)
        done = subprocess.run(
            command + (["--profile-child"] if profile else []),
            capture_output=True, text=True, env=_env(), check=False,
        )
        emulator_cpu = process_cpu(pid) - before
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{done.stdout}{done.stderr}")
    if profile:
        print(done.stderr)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["rows_per_s"] = rows / figures["seconds"]
    figures["cpu_ms_per_row"] = 1000 * figures["cpu_seconds"] / rows
    # The emulator's CPU over the client's whole process (start-up included): near
    # 100 % it is the bottleneck and rows/s ratios are pulled toward 1.
    figures["emulator_busy"] = emulator_cpu / figures["seconds"]
    return figures


Runs = dict[tuple[str, int], list[dict[str, float]]]


def run_rounds(counts: tuple[int, ...], repeat: int) -> Runs:
    """Every contender once per round and row count, the order rotating by round."""
    print(f"{'rows':>7} {'round':>5} {'contender':<9} {'seconds':>8} {'rows/s':>8} "
          f"{'client CPU':>14} {'peak RSS':>10} {'emulator busy':>13}")
    runs: Runs = {}
    for rows in counts:
        for round_ in range(repeat):
            shift = round_ % len(CONTENDERS)
            for kind in CONTENDERS[shift:] + CONTENDERS[:shift]:
                figures = measure(kind, rows)
                runs.setdefault((kind, rows), []).append(figures)
                print(f"{rows:>7} {round_ + 1:>5} {kind:<9} {figures['seconds']:>8.2f} "
                      f"{figures['rows_per_s']:>8.1f} {figures['cpu_ms_per_row']:>7.3f} ms/row "
                      f"{figures['peak_rss_mib']:>6.1f} MiB "
                      f"{100 * figures['emulator_busy']:>12.0f}%", flush=True)
    return runs


def paired(runs: Runs, rows: int, kind: str, base: str, field: str) -> float:
    """Median over rounds of ``kind``'s ``field`` divided by ``base``'s, same round."""
    return statistics.median(
        ours[field] / theirs[field]
        for ours, theirs in zip(runs[(kind, rows)], runs[(base, rows)], strict=True)
    )


def report(runs: Runs, counts: tuple[int, ...]) -> None:
    print("\nmedians of paired rounds:")
    print(f"{'rows':>7} {'CPU/row sdk/baseline':>21} {'rows/s sdk/baseline':>20} "
          f"{'CPU/row sdk/bare':>17} {'rows/s sdk/bare':>16}")
    for rows in counts:
        cpu = paired(runs, rows, "sdk", "baseline", "cpu_ms_per_row")
        speed = paired(runs, rows, "sdk", "baseline", "rows_per_s")
        cpu_bare = paired(runs, rows, "sdk", "bare", "cpu_ms_per_row")
        speed_bare = paired(runs, rows, "sdk", "bare", "rows_per_s")
        print(f"{rows:>7} {cpu:>20.2f}x {speed:>19.2f}x {cpu_bare:>16.2f}x {speed_bare:>15.2f}x")
    for rows in counts:
        cpu = paired(runs, rows, "sdk", "baseline", "cpu_ms_per_row")
        speed = paired(runs, rows, "sdk", "baseline", "rows_per_s")
        print(f"at {rows} rows: SDK CPU per row {cpu:.2f}x the baseline's (target <= 1.25x) "
              f"{'ok' if cpu <= 1.25 else 'MISSED'}; rows/s {speed:.2f}x (target >= 0.85x) "
              f"{'ok' if speed >= 0.85 else 'MISSED'}")
    small, large = counts
    growth = statistics.median(
        big["peak_rss_mib"] / little["peak_rss_mib"]
        for big, little in zip(runs[("sdk", large)], runs[("sdk", small)], strict=True)
    )
    print(f"SDK peak RSS {large} rows / {small} rows: {growth:.2f}x (target <= 1.3x) "
          f"{'ok' if growth <= 1.3 else 'MISSED'}")
    pinned = all(f["pinned"] for figures in runs.values() for f in figures)
    print(f"client and emulator pinned to CPUs {CLIENT_CPU} and {EMULATOR_CPU}: {pinned}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 and 3,000 rows")
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds (default 3)")
    parser.add_argument("--profile", choices=CONTENDERS,
                        help="profile one run of this contender (pyinstrument), then stop")
    parser.add_argument("--rows", type=int, help="with --profile: rows (default 3,000)")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--profile-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--emulator-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emulator_child:
        emulator_child()
        return
    if args.child:
        child(args.child, args.base_url, args.rows, args.profile_child)
        return
    if args.profile:
        rows = args.rows or 3_000
        figures = measure(args.profile, rows, profile=True)
        print(f"{args.profile}: {rows} rows, {figures['cpu_ms_per_row']:.3f} ms CPU/row")
        return
    started = time.perf_counter()
    counts = (300, 3_000) if args.quick else (1_000, 10_000)
    report(run_rounds(counts, args.rounds), counts)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
