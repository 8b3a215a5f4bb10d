"""Client overhead: the SDK against plain aiohttp making the same calls.

Run: ``.venv/bin/python benchmarks/client.py`` (a few minutes; the last duration
is in ``benchmarks/README.md``), ``--quick`` (fewer calls and rounds),
``--profile`` (cProfile of the SDK's hot path, after the table), ``--own`` (only
the SDK's own CPU per call, against canned answers in memory: steady on a loaded
machine).

A tiny ``aiohttp.web`` app answering canned JSON runs in a separate process, so
that it does not compete with the client in one event loop; with two or more
CPUs the server and the client are pinned to different ones. Against it, for
``users.create`` (POST without a body), ``avatars.create`` (POST with a JSON body)
and ``avatars.list`` (GET with a query, a JSON array answered) at 1, 16 and 64
requests in flight:

* sdk: ``AvaturnClient`` (default retry policy, ``max_concurrency`` = the
  concurrency), answers read into the typed models;
* plain: one ``aiohttp.ClientSession`` with a connection limit of the same size,
  the same headers, ``json.loads`` of the body and a status check;
* tuned (for information): plain, plus the SDK's two aiohttp habits (the query in
  the URL string, headers as a ready ``CIMultiDictProxy``).

Rounds are paired: each round runs every implementation once, back to back, in
alternating order, and yields one ratio per pair; a cell reports the median of
those paired ratios (and the median figures of each side). Two figures per
implementation: the client process's CPU time per call, which noisy neighbours
disturb much less than wall-clock rates, and req/s.
Target: the CPU ratio (plain CPU per call / SDK CPU per call) at least 0.9 in every
cell, i.e. the SDK costs at most about 1.12x plain aiohttp's CPU per call.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import aiohttp
import attrs
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avaturn_async import AvaturnClient, Request, Response, Timeouts, Transport

API_KEY = "bench-key"
USER_AGENT = f"avaturn-benchmark python/{platform.python_version()} aiohttp/{aiohttp.__version__}"
"""Sent by every implementation (the SDK through ``user_agent=``): the same bytes on the wire."""
USER_ID = "TGTLFCCRG67V6ERUMDTK3JNI5AYGF6XF"
AVATAR_ID = "7c5f3f5e-2b8a-4d0e-9a51-3f1e2d4c5b6a"
NEW_USER = json.dumps({"id": USER_ID}).encode()
CREATED = json.dumps(
    {
        "avatar_id": AVATAR_ID,
        "upload_url": f"https://upload.avaturn.invalid/{AVATAR_ID}?signature=abcdef0123456789",
    }
).encode()
LISTED = json.dumps(
    [
        {"id": AVATAR_ID, "status": "ready", "created_at": "2024-01-01T00:00:00+00:00"},
        {
            "id": "0b6f2c0e-4c1a-4a3e-8f7d-2e9b1c0a5d4f",
            "status": "processing",
            "created_at": "2024-01-02T00:00:00+00:00",
        },
        {
            "id": "5d1e9a7c-3b2f-4e6d-8c0a-9f8e7d6c5b4a",
            "status": "failed",
            "created_at": "2024-01-03T00:00:00+00:00",
        },
    ]
).encode()
CONCURRENCIES = (1, 16, 64)
OPERATIONS = {"users.create": "new_user", "avatars.create": "create", "avatars.list": "list"}
"""Operation name -> the method of ``Plain`` and ``Sdk`` that makes one call."""
TARGET = 0.9


# ---------------------------------------------------------------- the server process


def serve() -> None:
    """Serve the canned answers on a free loopback port; print it; stop when stdin closes."""

    async def new_user(request: web.Request) -> web.Response:
        return web.Response(body=NEW_USER, content_type="application/json")

    async def create(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=CREATED, content_type="application/json")

    async def listing(request: web.Request) -> web.Response:
        return web.Response(body=LISTED, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/api/v1/users/new", new_user)
        app.router.add_post("/api/v1/avatars/new", create)
        app.router.add_get("/api/v1/users/{user_id}/avatars", listing)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
        print(runner.addresses[0][1], flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {cpu})


def start_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    if not port.isdigit():
        process.kill()
        raise SystemExit("the benchmark server did not start")
    return process, f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------- the two clients

Call = Callable[[], Awaitable[object]]


async def run_calls(call: Call, total: int, concurrency: int) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) to make ``total`` calls with ``concurrency`` workers."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, time.process_time() - cpu


class Plain:
    """What a careful hand-written aiohttp client does for the same calls.

    ``tuned`` adds the SDK's two aiohttp habits: the query inside the URL string
    (``params=`` extends the URL on every request) and headers as a ready
    ``CIMultiDictProxy`` (a dict is converted on every request). Informational: it
    shows how much of the gap is the SDK's own work rather than how aiohttp is used.
    """

    def __init__(self, base_url: str, concurrency: int, *, tuned: bool = False) -> None:
        connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
        self.session = aiohttp.ClientSession(connector=connector)
        self.create_url = f"{base_url}/api/v1/avatars/new"
        self.user_url = f"{base_url}/api/v1/users/new"
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Authorization": f"Bearer {API_KEY}",
        }
        list_url = f"{base_url}/api/v1/users/{USER_ID}/avatars"
        self.headers: Mapping[str, str]
        self.list_params: dict[str, str] | None
        if tuned:
            self.headers = CIMultiDictProxy(CIMultiDict(headers))
            self.list_url, self.list_params = f"{list_url}?include_not_ready=false", None
        else:
            self.headers = headers
            self.list_url, self.list_params = list_url, {"include_not_ready": "false"}

    async def new_user(self) -> object:
        async with self.session.post(self.user_url, headers=self.headers) as answer:
            body = await answer.read()
            if answer.status != 200:
                raise RuntimeError(answer.status)
            return json.loads(body)

    async def create(self) -> object:
        async with self.session.post(
            self.create_url, json={"user_id": USER_ID}, headers=self.headers
        ) as answer:
            body = await answer.read()
            if answer.status != 200:
                raise RuntimeError(answer.status)
            return json.loads(body)

    async def list(self) -> object:
        async with self.session.get(
            self.list_url, params=self.list_params, headers=self.headers
        ) as answer:
            body = await answer.read()
            if answer.status != 200:
                raise RuntimeError(answer.status)
            return json.loads(body)

    async def aclose(self) -> None:
        await self.session.close()


class Sdk:
    def __init__(self, base_url: str, concurrency: int, transport: Transport | None = None) -> None:
        self.client = AvaturnClient(
            API_KEY,
            base_url=base_url,
            max_concurrency=concurrency,
            transport=transport,
            user_agent=USER_AGENT,
        )

    async def new_user(self) -> object:
        return await self.client.users.create()

    async def create(self) -> object:
        return await self.client.avatars.create(USER_ID)

    async def list(self) -> object:
        return await self.client.avatars.list(USER_ID)

    async def aclose(self) -> None:
        await self.client.aclose()


@attrs.frozen
class Cell:
    """One (operation, concurrency): by implementation, the figures of every round."""

    rates: dict[str, list[float]]
    """req/s, one per round."""
    cpu: dict[str, list[float]]
    """Client CPU microseconds per call, one per round."""

    def cpu_ratio(self, baseline: str = "plain") -> float:
        """Median over rounds of (``baseline`` CPU per call / sdk's), paired by round."""
        pairs = zip(self.cpu[baseline], self.cpu["sdk"], strict=True)
        return statistics.median(b / s for b, s in pairs)

    def rate_ratio(self) -> float:
        pairs = zip(self.rates["sdk"], self.rates["plain"], strict=True)
        return statistics.median(s / p for s, p in pairs)


async def measure(base_url: str, total: int, rounds: int) -> dict[tuple[str, int], Cell]:
    """Figures by (operation, concurrency): ``rounds`` paired, interleaved rounds each."""
    results: dict[tuple[str, int], Cell] = {}
    for concurrency in CONCURRENCIES:
        clients: dict[str, Sdk | Plain] = {
            "sdk": Sdk(base_url, concurrency),
            "plain": Plain(base_url, concurrency),
            "tuned": Plain(base_url, concurrency, tuned=True),
        }
        try:
            for operation, method in OPERATIONS.items():
                cell = Cell(rates={n: [] for n in clients}, cpu={n: [] for n in clients})
                for impl in clients.values():  # warm up connections and caches
                    await run_calls(getattr(impl, method), 2 * concurrency + 50, concurrency)
                for round_number in range(rounds):
                    order = list(clients) if round_number % 2 == 0 else list(clients)[::-1]
                    for name in order:
                        wall, cpu = await run_calls(
                            getattr(clients[name], method), total, concurrency
                        )
                        cell.rates[name].append(total / wall)
                        cell.cpu[name].append(cpu / total * 1e6)
                results[(operation, concurrency)] = cell
        finally:
            for impl in clients.values():
                await impl.aclose()
    return results


async def profile(base_url: str, total: int) -> str:
    sdk = Sdk(base_url, 16)
    try:
        await run_calls(sdk.create, 200, 16)
        profiler = cProfile.Profile()
        profiler.enable()
        for method in OPERATIONS.values():
            await run_calls(getattr(sdk, method), total, 16)
        profiler.disable()
    finally:
        await sdk.aclose()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats("avaturn_async", 25)
    return out.getvalue()


class CannedTransport:
    """A ``Transport`` answering at once from memory: isolates the SDK's own CPU per call."""

    def __init__(self) -> None:
        headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
        self.answers = {
            "users.create": Response(status=200, headers=headers, body=NEW_USER),
            "avatars.create": Response(status=200, headers=headers, body=CREATED),
            "avatars.list": Response(status=200, headers=headers, body=LISTED),
        }

    async def send(
        self, request: Request, *, url: str, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response:
        return self.answers[request.route]

    async def download(
        self,
        url: str,
        destination: Path,
        *,
        headers: Mapping[str, str],
        timeouts: Timeouts,
        max_bytes: int | None = None,
    ) -> int:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


async def own_cost(calls: int, rounds: int) -> dict[str, float]:
    """The SDK's own CPU microseconds per call (no network), median of ``rounds``."""
    sdk = Sdk("http://127.0.0.1:9", 16, transport=CannedTransport())
    costs: dict[str, float] = {}
    try:
        for operation, method in OPERATIONS.items():
            call = getattr(sdk, method)
            await run_calls(call, calls // 10, 1)
            figures = []
            for _ in range(rounds):
                _, cpu = await run_calls(call, calls, 1)
                figures.append(cpu / calls * 1e6)
            costs[operation] = statistics.median(figures)
    finally:
        await sdk.aclose()
    return costs


def report(results: dict[tuple[str, int], Cell]) -> bool:
    median = statistics.median
    print(
        f"{'call':<15} {'in flight':>9} {'sdk cpu us':>11} {'plain cpu us':>13}"
        f" {'cpu ratio':>10} {'sdk req/s':>10} {'plain req/s':>12} {'sdk/plain':>10}"
        f" {'tuned cpu ratio':>16}"
    )
    met = True
    for (operation, concurrency), cell in results.items():
        ratio = cell.cpu_ratio()
        met &= ratio >= TARGET
        flag = "" if ratio >= TARGET else "  below target"
        print(
            f"{operation:<15} {concurrency:>9} {median(cell.cpu['sdk']):>11.1f}"
            f" {median(cell.cpu['plain']):>13.1f} {ratio:>9.2f}x"
            f" {median(cell.rates['sdk']):>10,.0f} {median(cell.rates['plain']):>12,.0f}"
            f" {cell.rate_ratio():>9.2f}x {cell.cpu_ratio('tuned'):>15.2f}x{flag}"
        )
    print()
    print(
        f"target: cpu ratio >= {TARGET:.2f} in every cell: {'met' if met else 'NOT met'}"
        "\n  cpu ratio = plain CPU per call / sdk CPU per call, median of paired rounds;"
        "\n  sdk/plain = the same for req/s (wall clock, disturbed by other load);"
        "\n  tuned cpu ratio = against plain with the SDK's two aiohttp habits (information)"
    )
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    parser.add_argument("--rounds", type=int, help="paired rounds per cell")
    parser.add_argument("--calls", type=int, help="calls per implementation and round")
    parser.add_argument("--profile", action="store_true", help="cProfile the SDK afterwards")
    parser.add_argument(
        "--own", action="store_true", help="only the SDK's own CPU per call, canned answers"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        pin(0)
        serve()
        return
    total, rounds = (1000, 5) if args.quick else (3000, 7)
    total, rounds = args.calls or total, args.rounds or rounds
    if args.own:
        pin(1)
        for operation, cost in asyncio.run(own_cost(20 * total, rounds)).items():
            print(f"{operation:<15} {cost:6.2f} us of SDK CPU per call (canned answers)")
        return
    began = time.perf_counter()
    process, base_url = start_server()
    pin(1)
    try:
        print(
            f"{total} calls per round, median of {rounds} paired rounds;"
            f" Python {platform.python_version()}, aiohttp {aiohttp.__version__},"
            f" {os.cpu_count()} CPUs (server and client pinned apart)"
        )
        results = asyncio.run(measure(base_url, total, rounds))
        report(results)
        print(f"took {time.perf_counter() - began:.0f} s")
        if args.profile:
            print()
            print(asyncio.run(profile(base_url, total)))
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    main()
