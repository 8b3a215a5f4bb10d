"""Both webhook endpoints under a burst of mixed deliveries over loopback.

Valid, forged, tampered, replayed (recent: a duplicate; stale: a replay attack),
oversized (declared and streamed), malformed, unsigned and wrong-method requests,
thousands of them, many at once: every answer is the documented status, nothing
is 5xx, only valid messages are dispatched (each once), and memory stays bounded.
The ASGI app runs under a real uvicorn server; the aiohttp one under aiohttp.web.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import resource
import time
import tracemalloc
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import (
    Event,
    RenderReady,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
)
from avaturn_async.webhooks.aiohttp import make_app
from avaturn_async.webhooks.asgi import WebhookApp
from tests.support import SwappableASGI
from tests.support import uvicorn_server as run_uvicorn

SECRET = make_webhook_secret()
LIMIT = 4096
BURST = 2500
WARM_UP = 300
IN_FLIGHT = 32
STATUS = {
    "valid": 204,
    "replay_recent": 204,
    "replay_stale": 401,
    "forged": 401,
    "tampered": 401,
    "unsigned": 401,
    "oversized": 413,
    "oversized_streamed": 413,
    "malformed": 400,
    "wrong_method": 405,
}
WEIGHTS = {
    "valid": 30,
    "replay_recent": 10,
    "replay_stale": 8,
    "forged": 10,
    "tampered": 8,
    "unsigned": 6,
    "oversized": 6,
    "oversized_streamed": 4,
    "malformed": 10,
    "wrong_method": 4,
}
TRACED_GROWTH_LIMIT = 8 * 1024 * 1024
RSS_GROWTH_LIMIT = 64 * 1024 * 1024


@dataclass
class Delivery:
    kind: str
    method: str = "POST"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    streamed: bool = False
    render_id: str | None = None


class Mix:
    """A seeded stream of deliveries; replays refer to earlier valid ones."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._valid: list[Delivery] = []
        self.sent: Counter[str] = Counter()

    def _signed(self, secret: str = SECRET, **options: Any) -> Delivery:
        event = make_render_ready()
        body, headers = sign_webhook(event, secret, **options)
        return Delivery(kind="valid", body=body, headers=headers, render_id=event.id)

    def next(self) -> Delivery:
        kinds, weights = zip(*WEIGHTS.items(), strict=True)
        kind = self._random.choices(kinds, weights)[0]
        if kind == "replay_recent" and not self._valid:
            kind = "valid"
        self.sent[kind] += 1
        if kind == "valid":
            delivery = self._signed()
            self._valid.append(delivery)
            return delivery
        if kind == "replay_recent":
            original = self._random.choice(self._valid[-50:])
            return Delivery(kind, body=original.body, headers=original.headers)
        if kind == "replay_stale":
            stale = self._signed(timestamp=int(time.time()) - 3600)
            return Delivery(kind, body=stale.body, headers=stale.headers)
        if kind == "forged":
            forged = self._signed(make_webhook_secret())
            return Delivery(kind, body=forged.body, headers=forged.headers)
        if kind == "tampered":
            genuine = self._signed()
            body = genuine.body.replace(b'"ready"', b'"failed"')
            return Delivery(kind, body=body, headers=genuine.headers)
        if kind == "unsigned":
            return Delivery(kind, body=json.dumps({"event": "render.ready"}).encode())
        if kind in ("oversized", "oversized_streamed"):
            body, headers = sign_webhook(b"{" + b" " * LIMIT + b"}", SECRET)
            return Delivery(kind, body=body, headers=headers, streamed=kind != "oversized")
        if kind == "malformed":
            garbage = self._random.choice([b"{not json", b"[1, 2]", b"\xff", b'{"event": 1}'])
            body, headers = sign_webhook(garbage, SECRET)
            return Delivery(kind, body=body, headers=headers)
        return Delivery(kind, method="GET")


async def send(session: aiohttp.ClientSession, url: str, delivery: Delivery) -> int:
    data: Any = delivery.body
    if delivery.streamed:
        body = delivery.body

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 1024):
                yield body[start : start + 1024]

        data = chunks()
    if delivery.method != "POST":
        data = None
    async with session.request(delivery.method, url, data=data, headers=delivery.headers) as answer:
        await answer.read()
        return answer.status


@dataclass
class Outcome:
    wrong: list[tuple[str, int]]
    statuses: Counter[int]
    sent: Counter[str]
    valid_ids: set[str]


async def burst(url: str, mix: Mix, count: int) -> Outcome:
    wrong: list[tuple[str, int]] = []
    statuses: Counter[int] = Counter()
    valid_ids: set[str] = set()
    queue = deque(mix.next() for _ in range(count))
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while queue:
                delivery = queue.popleft()
                status = await send(session, url, delivery)
                statuses[status] += 1
                if status != STATUS[delivery.kind]:
                    wrong.append((delivery.kind, status))
                if delivery.render_id is not None:
                    valid_ids.add(delivery.render_id)

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return Outcome(wrong, statuses, Counter(mix.sent), valid_ids)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


@dataclass
class Measured:
    outcome: Outcome
    dispatched: Counter[str]
    traced_growth: int
    rss_growth: int


async def measured_burst(url: str, dispatched: Counter[str]) -> Measured:
    """Warm up, then one burst under tracemalloc; returns what it saw and cost."""
    mix = Mix(seed=2024)
    await burst(url, mix, WARM_UP)
    dispatched.clear()
    gc.collect()
    rss_before = rss_bytes()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        outcome = await burst(url, Mix(seed=7), BURST)
        gc.collect()
        traced_growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return Measured(outcome, Counter(dispatched), traced_growth, rss_bytes() - rss_before)


def recording_router() -> tuple[WebhookRouter, Counter[str]]:
    router, dispatched = WebhookRouter(), Counter[str]()

    @router.on_any
    async def record(event: Event) -> None:
        assert isinstance(event, RenderReady)
        dispatched[event.id] += 1

    return router, dispatched


@pytest.fixture(scope="module")
def uvicorn_url() -> Iterator[tuple[str, SwappableASGI]]:
    with run_uvicorn("/hooks") as served:
        yield served


async def run_burst(adapter: str, uvicorn_url: tuple[str, SwappableASGI]) -> Measured:
    router, dispatched = recording_router()
    verifier = WebhookVerifier(SECRET, max_body_size=LIMIT)
    if adapter == "asgi":
        url, holder = uvicorn_url
        holder.target = WebhookApp(WebhookPipeline(verifier, router))
        return await measured_burst(url, dispatched)
    app = make_app(WebhookPipeline(verifier, router), path="/hooks")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return await measured_burst(f"http://127.0.0.1:{runner.addresses[0][1]}/hooks", dispatched)
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module", params=["asgi", "aiohttp"])
def measured(request: pytest.FixtureRequest, uvicorn_url: tuple[str, SwappableASGI]) -> Measured:
    """The burst against one adapter, run once per module and shared by the tests below."""
    adapter: str = request.param
    return anyio.run(run_burst, adapter, uvicorn_url)


async def test_every_delivery_gets_its_documented_status_and_none_is_5xx(
    measured: Measured,
) -> None:
    outcome = measured.outcome
    assert sum(outcome.statuses.values()) == BURST
    assert set(outcome.sent) == set(STATUS)
    assert outcome.wrong == []
    assert not [status for status in outcome.statuses if status >= 500]


async def test_only_valid_deliveries_are_dispatched_each_exactly_once(measured: Measured) -> None:
    assert set(measured.dispatched) == measured.outcome.valid_ids
    assert set(measured.dispatched.values()) == {1}


async def test_memory_stays_bounded_over_the_burst(measured: Measured) -> None:
    assert measured.traced_growth < TRACED_GROWTH_LIMIT, measured.traced_growth
    assert measured.rss_growth < RSS_GROWTH_LIMIT, measured.rss_growth
