"""WebhookPipeline (status mapping, dedupe protocol) and InMemoryIdempotencyStore."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import anyio
import pytest

from avaturn_async._errors import ConfigurationError
from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import (
    Event,
    IdempotencyStore,
    InMemoryIdempotencyStore,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
    idempotency_key,
)

TOKEN = "tok-shared-token-01"
SECRET = make_webhook_secret()


def make_pipeline(
    router: WebhookRouter | None = None, **options: object
) -> tuple[WebhookPipeline, list[Event]]:
    seen: list[Event] = []
    if router is None:
        router = WebhookRouter()
        router.on_any(seen.append)
    verifier = WebhookVerifier(SECRET, max_body_size=4096)
    return WebhookPipeline(verifier, router, **options), seen  # type: ignore[arg-type]


def delivery(msg_id: str = "msg_1") -> tuple[bytes, dict[str, str]]:
    return sign_webhook(make_render_ready(), SECRET, msg_id=msg_id)


async def test_valid_delivery_is_dispatched_and_answered_204() -> None:
    pipeline, seen = make_pipeline()
    body, headers = delivery()
    answer = await pipeline.handle(body, headers)
    assert (answer.status, answer.outcome, len(seen)) == (204, "processed", 1)
    assert answer.event == seen[0]


async def test_bad_signature_is_401_with_the_reason() -> None:
    pipeline, seen = make_pipeline()
    body, headers = delivery()
    answer = await pipeline.handle(body + b" ", headers)
    assert (answer.status, answer.outcome, seen) == (401, "no_matching_signature", [])
    assert json.loads(answer.body)["error"] == "no_matching_signature"


async def test_malformed_payload_is_400_naming_the_path() -> None:
    pipeline, _ = make_pipeline()
    body, headers = sign_webhook({"event": "render.ready", "avatar_id": 1}, SECRET)
    answer = await pipeline.handle(body, headers)
    assert (answer.status, json.loads(answer.body)["path"]) == (400, "$.avatar_id")


async def test_non_json_payload_is_400() -> None:
    pipeline, _ = make_pipeline()
    body, headers = sign_webhook(b"\xff\xfe", SECRET)
    assert (await pipeline.handle(body, headers)).status == 400


async def test_too_large_body_is_413() -> None:
    pipeline, _ = make_pipeline()
    body, headers = sign_webhook(b"x" * 5000, SECRET)
    assert (await pipeline.handle(body, headers)).status == 413


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_non_post_is_405_with_allow(method: str) -> None:
    answer = make_pipeline()[0].check_method(method)
    assert answer is not None
    assert (answer.status, dict(answer.headers)["allow"]) == (405, "POST")


def test_post_passes_the_method_check() -> None:
    assert make_pipeline()[0].check_method("post") is None


@pytest.mark.parametrize(
    ("value", "status"), [("5000", 413), ("9" * 5000, 413), ("12x", 400), ("-1", 400), ("", 400)]
)
def test_declared_content_length_is_checked(value: str, status: int) -> None:
    answer = make_pipeline()[0].check_content_length(value)
    assert answer is not None
    assert answer.status == status


@pytest.mark.parametrize("value", [None, "0", "4096"])
def test_acceptable_content_length_passes(value: str | None) -> None:
    assert make_pipeline()[0].check_content_length(value) is None


async def test_duplicate_delivery_is_acknowledged_but_not_dispatched_again() -> None:
    pipeline, seen = make_pipeline()
    body, headers = delivery()
    first = await pipeline.handle(body, headers)
    second = await pipeline.handle(body, headers)
    assert (first.outcome, second.status, second.outcome, len(seen)) == (
        "processed",
        204,
        "duplicate",
        1,
    )


async def test_redelivery_with_a_new_timestamp_but_the_same_id_is_a_duplicate() -> None:
    pipeline, seen = make_pipeline()
    event, now = make_render_ready(), int(time.time())
    for timestamp in (now, now + 30):
        body, headers = sign_webhook(event, SECRET, msg_id="msg_same", timestamp=timestamp)
        await pipeline.handle(body, headers)
    assert len(seen) == 1


async def test_without_webhook_id_duplicates_are_found_by_content_hash() -> None:
    router = WebhookRouter()
    seen: list[Event] = []
    router.on_any(seen.append)
    pipeline = WebhookPipeline(WebhookVerifier.shared_token(TOKEN), router)
    body = json.dumps({"event": "x.y"}).encode()
    for _ in range(2):
        await pipeline.handle(body, {"x-avaturn-token": TOKEN})
    await pipeline.handle(body + b" ", {"x-avaturn-token": TOKEN})
    assert len(seen) == 2


async def test_dedupe_can_be_disabled() -> None:
    pipeline, seen = make_pipeline(dedupe=False)
    body, headers = delivery()
    await pipeline.handle(body, headers)
    await pipeline.handle(body, headers)
    assert len(seen) == 2


async def test_handler_failure_is_500_and_the_redelivery_is_processed() -> None:
    router, calls = WebhookRouter(), []

    @router.on_any
    def flaky(event: Event) -> None:
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("transient")

    pipeline, _ = make_pipeline(router)
    body, headers = delivery()
    first = await pipeline.handle(body, headers)
    second = await pipeline.handle(body, headers)
    assert (first.status, first.outcome, second.status, len(calls)) == (
        500,
        "handler_failed",
        204,
        2,
    )
    assert first.dispatch is not None
    assert len(first.dispatch.failures) == 1


async def test_handler_failure_is_204_when_not_failing_deliveries() -> None:
    router = WebhookRouter()
    router.on_any(lambda e: 1 / 0)
    pipeline, _ = make_pipeline(router, fail_on_handler_error=False)
    body, headers = delivery()
    assert (await pipeline.handle(body, headers)).status == 204
    assert (await pipeline.handle(body, headers)).outcome == "duplicate"


async def test_cancelled_dispatch_releases_the_key() -> None:
    router, entered = WebhookRouter(), anyio.Event()

    @router.on_any
    async def slow(event: Event) -> None:
        entered.set()
        await anyio.sleep_forever()

    store = InMemoryIdempotencyStore()
    pipeline, _ = make_pipeline(router, store=store)
    body, headers = delivery()
    async with anyio.create_task_group() as group:
        group.start_soon(pipeline.handle, body, headers)
        await entered.wait()
        assert len(store) == 1
        group.cancel_scope.cancel()
    assert len(store) == 0


class BrokenStore:
    async def seen_or_mark(self, key: str) -> bool:
        raise ConnectionError("redis down")

    async def unmark(self, key: str) -> None:
        raise AssertionError("never claimed")


async def test_store_failure_is_503_and_nothing_is_dispatched() -> None:
    pipeline, seen = make_pipeline(store=BrokenStore())
    body, headers = delivery()
    answer = await pipeline.handle(body, headers)
    assert (answer.status, answer.outcome, seen) == (503, "store_failed", [])


async def test_unexpected_dispatch_error_is_500_and_releases_the_key() -> None:
    class ExplodingRouter(WebhookRouter):
        async def dispatch(self, event: Event):  # type: ignore[no-untyped-def]
            raise RuntimeError("router bug")

    store = InMemoryIdempotencyStore()
    pipeline, _ = make_pipeline(ExplodingRouter(), store=store)
    body, headers = delivery()
    assert (await pipeline.handle(body, headers)).status == 500
    assert len(store) == 0


def test_pipeline_repr_does_not_show_the_secret() -> None:
    assert SECRET[6:] not in repr(make_pipeline()[0])


# -- InMemoryIdempotencyStore ---------------------------------------------------------


def test_in_memory_store_satisfies_the_protocol() -> None:
    assert isinstance(InMemoryIdempotencyStore(), IdempotencyStore)


async def test_first_claim_is_new_and_second_is_seen() -> None:
    store = InMemoryIdempotencyStore()
    assert [await store.seen_or_mark("k"), await store.seen_or_mark("k")] == [False, True]


async def test_unmarked_key_is_new_again() -> None:
    store = InMemoryIdempotencyStore()
    await store.seen_or_mark("k")
    await store.unmark("k")
    assert await store.seen_or_mark("k") is False


async def test_unmarking_an_unknown_key_is_a_no_op() -> None:
    await InMemoryIdempotencyStore().unmark("never-seen")


async def test_keys_expire_after_the_ttl() -> None:
    now = [0.0]
    store = InMemoryIdempotencyStore(ttl=timedelta(seconds=10), now=lambda: now[0])
    await store.seen_or_mark("k")
    now[0] = 10.5
    assert await store.seen_or_mark("k") is False


async def test_keys_within_the_ttl_are_remembered() -> None:
    now = [0.0]
    store = InMemoryIdempotencyStore(ttl=timedelta(seconds=10), now=lambda: now[0])
    await store.seen_or_mark("k")
    now[0] = 9.5
    assert await store.seen_or_mark("k") is True


async def test_oldest_keys_are_evicted_past_max_entries() -> None:
    store = InMemoryIdempotencyStore(max_entries=3)
    for key in "abcd":
        await store.seen_or_mark(key)
    assert len(store) == 3
    assert await store.seen_or_mark("a") is False
    assert await store.seen_or_mark("d") is True


@pytest.mark.parametrize(
    "options", [{"max_entries": 0}, {"ttl": timedelta(0)}], ids=["max_entries", "ttl"]
)
def test_store_limits_must_be_positive(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        InMemoryIdempotencyStore(**options)  # type: ignore[arg-type]


def test_idempotency_key_prefers_the_message_id() -> None:
    assert idempotency_key("msg_1", b"body") == "id:msg_1"


def test_idempotency_key_without_id_hashes_the_body() -> None:
    assert idempotency_key(None, b"a") != idempotency_key(None, b"b")
    assert idempotency_key(None, b"a").startswith("sha256:")
