"""Durable inbox throughput: deliveries acknowledged per second, with and without an inbox.

Run: ``.venv/bin/python benchmarks/inbox.py [--quick]`` (about 40 s; ``--quick`` ~15 s).

Two aiohttp receivers (``serve_webhooks``), each in its own process pinned to
CPU 0, verify, parse and dedupe the same signed deliveries:

* **inbox**: ``inbox=WebhookInbox(path)`` (SQLite, WAL, ``synchronous=FULL``):
  each delivery is committed and fsynced before its 202; concurrent deliveries
  are group-committed (one transaction and one fsync for all waiting ones).
* **no inbox**: the default receiver: in-memory dedupe, then dispatch to a
  no-op handler, answered 200; nothing written anywhere.

A load generator on CPU 1 sends from 32 concurrent tasks over keep-alive
connections, every delivery a fresh ``webhook-id``, signed beforehand. Rounds
alternate the two receivers (order swapped every round); each round's ratio is
inbox/no-inbox, and the figure is the median of those paired ratios.
Target: inbox at least 0.6x no inbox.

The same helpers (``start_receiver``, ``acks_per_second``) serve
``benchmarks/scale_inbox.py`` for the PostgreSQL comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook

SECRET = make_webhook_secret()
CONCURRENCY = 32
REPO_ROOT = Path(__file__).resolve().parents[1]

RECEIVER = """\
import os, sys
import anyio
from avaturn_async.webhooks import WebhookInbox, WebhookPipeline, WebhookRouter, WebhookVerifier
from avaturn_async.webhooks.aiohttp import serve_webhooks

async def main() -> None:
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "postgres":
        from avaturn_async.postgres import PostgresInbox
        inbox = PostgresInbox(target)
    else:
        inbox = WebhookInbox(target) if mode == "sqlite" else None
    router = WebhookRouter()
    router.on_any(lambda event: None)
    verifier = WebhookVerifier(os.environ["AVATURN_WEBHOOK_SECRET"])
    async with serve_webhooks(WebhookPipeline(verifier, router, inbox=inbox)) as server:
        print(server.url, flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)   # until the parent closes stdin
    print(getattr(inbox.store, "batches", 0) if inbox is not None else 0, flush=True)

anyio.run(main)
"""


def pin(cpu: int) -> list[str]:
    """A ``taskset`` prefix pinning a command to ``cpu`` (nothing with one CPU)."""
    return ["taskset", "-c", str(cpu)] if (os.cpu_count() or 1) > 1 else []


async def start_receiver(
    mode: str, target: str, *, cpu: int = 0
) -> tuple[asyncio.subprocess.Process, str]:
    """Start a receiver process (``sqlite``, ``postgres`` or ``none``); it and its URL."""
    env = {**os.environ, "AVATURN_WEBHOOK_SECRET": SECRET, "PYTHONPATH": str(REPO_ROOT)}
    process = await asyncio.create_subprocess_exec(
        *pin(cpu),
        sys.executable,
        "-c",
        RECEIVER,
        mode,
        target,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO_ROOT,  # "-c" puts the working directory first on sys.path
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    if not line.startswith(b"http://"):
        raise RuntimeError(f"receiver {mode} did not start: {line!r}")
    return process, line.decode().strip()


async def stop_receiver(process: asyncio.subprocess.Process) -> int:
    """Stop a receiver; the number of insert commits its inbox made (0 if unknown)."""
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.close()
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 10)
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()
        return 0
    return int(line or b"0")


def signed_deliveries(count: int) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` deliveries with fresh webhook ids, signed before any timing starts."""
    return [sign_webhook(make_render_ready(), SECRET) for _ in range(count)]


async def acks_per_second(
    session: aiohttp.ClientSession,
    urls: Sequence[str],
    deliveries: Sequence[tuple[bytes, dict[str, str]]],
    concurrency: int = CONCURRENCY,
) -> float:
    """Send every delivery from ``concurrency`` tasks (spread over ``urls``); 2xx per second."""
    loop = asyncio.get_running_loop()
    queue = iter(enumerate(deliveries))
    acknowledged = 0

    async def sender() -> None:
        nonlocal acknowledged
        for n, (body, headers) in queue:
            async with session.post(urls[n % len(urls)], data=body, headers=headers) as answer:
                await answer.read()
                if answer.status < 300:
                    acknowledged += 1

    started = loop.time()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    elapsed = loop.time() - started
    if acknowledged != len(deliveries):
        raise RuntimeError(f"only {acknowledged} of {len(deliveries)} deliveries acknowledged")
    return acknowledged / elapsed


async def paired_rounds(
    sides: dict[str, Sequence[str]], *, rounds: int, per_round: int
) -> dict[str, list[float]]:
    """acks/s of each side per round, the sides alternating (order reversed every round)."""
    rates: dict[str, list[float]] = {name: [] for name in sides}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        for urls in sides.values():  # warm-up: connections, caches, the database file
            await acks_per_second(session, urls, signed_deliveries(per_round // 4))
        names = list(sides)
        for round_no in range(rounds):
            for name in names if round_no % 2 == 0 else names[::-1]:
                deliveries = signed_deliveries(per_round)
                rates[name].append(await acks_per_second(session, sides[name], deliveries))
    return rates


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """The median of the per-round ratios."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


async def main(quick: bool) -> None:
    rounds, per_round = (5, 1_000) if quick else (9, 3_000)
    with tempfile.TemporaryDirectory() as tmp:
        inbox_process, inbox_url = await start_receiver("sqlite", str(Path(tmp) / "inbox.db"))
        plain_process, plain_url = await start_receiver("none", "-")
        try:
            os.sched_setaffinity(0, {1}) if (os.cpu_count() or 1) > 1 else None
            rates = await paired_rounds(
                {"inbox": [inbox_url], "no inbox": [plain_url]},
                rounds=rounds,
                per_round=per_round,
            )
        finally:
            commits = await stop_receiver(inbox_process)
            await stop_receiver(plain_process)
    delivered = per_round * rounds + per_round // 4
    ratio = paired_ratio(rates["inbox"], rates["no inbox"])
    print(f"{CONCURRENCY} concurrent senders, {rounds} paired rounds of {per_round} deliveries")
    print(f"{'receiver':<26}{'median acks/s':>14}")
    print(f"{'SQLite inbox (FULL)':<26}{statistics.median(rates['inbox']):>14,.0f}")
    print(f"{'no inbox':<26}{statistics.median(rates['no inbox']):>14,.0f}")
    if commits:
        print(
            f"SQLite commits: {commits:,} for {delivered:,} deliveries "
            f"({delivered / commits:.1f} deliveries per commit and fsync)"
        )
    verdict = "meets" if ratio >= 0.6 else "MISSES"
    print(f"inbox / no inbox (median of paired ratios): {ratio:.2f}x  ({verdict} target 0.6x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    asyncio.run(main(parser.parse_args().quick))
