"""Batch onboarding throughput and memory: ``avaturn_async.batch.onboard`` against a
baseline of plain aiohttp code making the same requests without the SDK.

Run: ``.venv/bin/python benchmarks/onboarding.py`` (1,000 and 10,000 rows, about
a minute and a half on 2 cores) or ``--quick`` (300 and 3,000 rows, about 30 s).

For each row count and each contender, a fresh emulator runs in its own process
(``python -m avaturn_async emulator --port 0 --processing-delay 0``) and the
client runs in another, so the client's peak RSS (``VmHWM``) is measured alone
and each peak is separate. Both contenders keep at most 16 requests and 128
rows in flight, and poll List User Avatars (``include_not_ready=true``) from
50 ms after the upload, growing by 1.5x, until the avatar is ready:

* baseline: per row, ``POST users/new``, ``POST avatars/new``, the multipart
  upload of the three photos, then polling; no retries, no journal, no checks.
* SDK: ``onboard()`` reading a CSV manifest lazily, with its SQLite journal,
  photo checks and the client's retry loop; polling (no webhooks) like the
  baseline.

Each contender runs ``--repeat`` times (3) per row count, interleaved, and its
best run counts. Targets: the SDK's rows/s at least 0.7x the baseline's, and its
peak RSS at the larger row count no more than 1.3x that at the smaller one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------- the contenders


async def run_baseline(base_url: str, rows: int) -> float:
    """Plain aiohttp, the same request sequence as the SDK; returns seconds."""
    import aiohttp

    from avaturn_async.samples import sample_photo_paths

    photos = [path.read_bytes() for path in sample_photo_paths()]
    fields = ("image-frontal", "image-side-1", "image-side-2")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    api = f"{base_url}/api/v1"

    async def one(http: aiohttp.ClientSession) -> None:
        async with http.post(f"{api}/users/new", headers=headers) as answer:
            user_id = (await answer.json())["id"]
        body = {"user_id": user_id}
        async with http.post(f"{api}/avatars/new", json=body, headers=headers) as answer:
            created = await answer.json()
        form = aiohttp.FormData()
        for field, data in zip(fields, photos, strict=True):
            form.add_field(field, data, filename=f"{field}.jpg", content_type="image/jpeg")
        form.add_field("body-type", "female")
        form.add_field("telephoto", "false")
        async with http.post(created["upload_url"], data=form) as answer:
            answer.raise_for_status()
        delay = FIRST_POLL
        while True:
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 1.5)
            url = f"{api}/users/{user_id}/avatars"
            params = {"include_not_ready": "true"}
            async with http.get(url, params=params, headers=headers) as answer:
                items = await answer.json()
            if any(i["id"] == created["avatar_id"] and i["status"] == "ready" for i in items):
                return

    async def worker(http: aiohttp.ClientSession, todo: Iterator[int]) -> None:
        for _ in todo:
            await one(http)

    started = time.perf_counter()
    # The connector caps requests in flight; more rows than that are in progress,
    # so that rows waiting for their avatar do not hold up the others (as in the SDK).
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector) as http:
        todo = iter(range(rows))  # shared: each worker takes the next row
        await asyncio.gather(*(worker(http, todo) for _ in range(ROWS_IN_PROGRESS)))
    return time.perf_counter() - started


async def run_sdk(base_url: str, rows: int) -> float:
    """``onboard()`` on a generated CSV manifest; returns seconds."""
    from avaturn_async import AvaturnClient
    from avaturn_async.batch import Manifest, onboard, write_sample_manifest

    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_sample_manifest(tmp, rows)
        started = time.perf_counter()
        async with AvaturnClient(
            api_key=API_KEY, base_url=base_url, max_concurrency=IN_FLIGHT
        ) as client:
            with Manifest(manifest) as source:
                summary = await onboard(
                    client,
                    source,
                    journal=Path(tmp) / "onboard.db",
                    concurrency=SDK_CONCURRENCY,
                    max_in_flight=ROWS_IN_PROGRESS,
                    poll_interval=FIRST_POLL,
                )
        elapsed = time.perf_counter() - started
    if summary.ready != rows:
        raise SystemExit(f"SDK run incomplete: {summary.format()}")
    return elapsed


def child(kind: str, base_url: str, rows: int) -> None:
    """Run one contender in this process and print its figures as JSON."""
    runner = run_sdk if kind == "sdk" else run_baseline
    seconds = asyncio.run(runner(base_url, rows))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_rss_mib(), "cpu_seconds": cpu}))


# ---------------------------------------------------------------- orchestration


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@contextmanager
def emulator_process() -> Iterator[str]:
    """A fresh emulator in its own process; yields its base URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "avaturn_async",
            "emulator",
            "--port",
            "0",
            "--processing-delay",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert process.stdout is not None
        found = re.search(r"http://[\d.]+:\d+", process.stdout.readline())
        if found is None:
            raise SystemExit("the emulator did not start")
        yield found.group(0)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(kind: str, rows: int) -> dict[str, float]:
    with emulator_process() as base_url:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                kind,
                "--rows",
                str(rows),
                "--base-url",
                base_url,
            ],
            capture_output=True,
            text=True,
            env=_env(),
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{done.stdout}{done.stderr}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["rows_per_s"] = rows / figures["seconds"]
    figures["cpu_ms_per_row"] = 1000 * figures["cpu_seconds"] / rows
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 and 3,000 rows")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per contender and row count (best kept)"
    )
    parser.add_argument("--child", choices=("sdk", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.base_url, args.rows)
        return
    counts = (300, 3_000) if args.quick else (1_000, 10_000)
    started = time.perf_counter()
    print(
        f"{'rows':>7} {'contender':<9} {'seconds':>8} {'rows/s':>8} {'peak RSS':>10} "
        f"{'client CPU':>14}"
    )
    results: dict[tuple[str, int], dict[str, float]] = {}
    pair_ratios: dict[int, list[float]] = {}
    for rows in counts:
        # Interleaved repeats, best throughput kept: a shared machine's noise
        # (other processes taking a core) only ever slows a run down.
        for _ in range(args.repeat):
            pair = {kind: measure(kind, rows) for kind in ("baseline", "sdk")}
            for kind, figures in pair.items():
                print(
                    f"{rows:>7} {kind:<9} {figures['seconds']:>8.2f} "
                    f"{figures['rows_per_s']:>8.1f} {figures['peak_rss_mib']:>7.1f} MiB "
                    f"{figures['cpu_ms_per_row']:>7.2f} ms/row",
                    flush=True,
                )
                best = results.get((kind, rows))
                if best is None or figures["rows_per_s"] > best["rows_per_s"]:
                    results[(kind, rows)] = figures
            ratio = pair["sdk"]["rows_per_s"] / pair["baseline"]["rows_per_s"]
            pair_ratios.setdefault(rows, []).append(ratio)
    small, large = counts
    for rows in counts:
        ratio = results[("sdk", rows)]["rows_per_s"] / results[("baseline", rows)]["rows_per_s"]
        verdict = "ok" if ratio >= 0.7 else "MISSED"
        median = statistics.median(pair_ratios[rows])
        print(
            f"throughput SDK/baseline at {rows} rows: {ratio:.2f}x best vs best "
            f"(target >= 0.7x) {verdict}; median of back-to-back pairs {median:.2f}x"
        )
    growth = results[("sdk", large)]["peak_rss_mib"] / results[("sdk", small)]["peak_rss_mib"]
    verdict = "ok" if growth <= 1.3 else "MISSED"
    print(f"SDK peak RSS {large} rows / {small} rows: {growth:.2f}x (target <= 1.3x) {verdict}")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
