"""The inbox contract: WebhookInbox's behaviours over every InboxStore implementation.

Storing, dedupe, the worker's retries, leases, dead letters, replay, purge.
Time is an injected clock: backoffs and leases are crossed by advancing it,
never by sleeping.
"""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from avaturn_async.testing import event_to_bytes, make_render_ready
from avaturn_async.webhooks import (
    Event,
    InboxStatus,
    InboxStore,
    WebhookInbox,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
)
from tests.inbox_support import (
    BACKOFF,
    LEASE,
    FakeClock,
    deliver,
    dispatch,
    only_record,
    recording_router,
)

TOKEN = "tok-shared-token-01"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def inbox(inbox_store: InboxStore, clock: FakeClock) -> WebhookInbox:
    return WebhookInbox(store=inbox_store, now=clock)


async def test_worker_dispatches_a_stored_event_once_and_marks_it_done(
    inbox: WebhookInbox,
) -> None:
    _, event = await deliver(inbox)
    router, calls = recording_router()
    assert await dispatch(inbox, router) == 1
    assert await dispatch(inbox, router) == 0
    record = await only_record(inbox)
    assert (calls, record.status, record.attempts) == ([event], InboxStatus.DONE, 1)


async def test_handler_failing_twice_then_succeeding_is_retried_until_done(
    inbox: WebhookInbox, clock: FakeClock
) -> None:
    await deliver(inbox)
    router, calls = recording_router(failures=2)
    for _ in range(3):
        assert await dispatch(inbox, router) == 1
        clock.advance(BACKOFF)
    record = await only_record(inbox)
    assert (len(calls), record.status, record.attempts) == (3, InboxStatus.DONE, 3)


async def test_failed_event_is_not_due_again_before_its_backoff(
    inbox: WebhookInbox, clock: FakeClock
) -> None:
    await deliver(inbox)
    router, _ = recording_router(failures=1)
    await dispatch(inbox, router)
    clock.advance(BACKOFF - 1)
    assert await dispatch(inbox, router) == 0
    clock.advance(1)
    assert await dispatch(inbox, router) == 1


async def test_always_failing_event_is_dead_after_max_attempts(
    inbox: WebhookInbox, clock: FakeClock
) -> None:
    await deliver(inbox)
    router, calls = recording_router(failures=100)
    for _ in range(5):
        await dispatch(inbox, router, max_attempts=3)
        clock.advance(BACKOFF)
    record = await only_record(inbox)
    assert (len(calls), record.status, record.attempts) == (3, InboxStatus.DEAD, 3)
    assert record.last_error == "RuntimeError: boom"


async def test_redelivery_with_the_same_webhook_id_is_stored_and_dispatched_once(
    inbox: WebhookInbox,
) -> None:
    event = make_render_ready()
    # A real redelivery is signed again, with a new timestamp, under the same id.
    first, _ = await deliver(inbox, event, msg_id="msg_same")
    again, _ = await deliver(inbox, event, msg_id="msg_same")
    router, calls = recording_router()
    await dispatch(inbox, router, limit=10)
    assert [(a.status, a.outcome) for a in (first, again)] == [(202, "stored"), (202, "duplicate")]
    assert calls == [event]


async def test_same_content_without_webhook_id_is_stored_once(inbox: WebhookInbox) -> None:
    pipeline = WebhookPipeline(WebhookVerifier.shared_token(TOKEN), WebhookRouter(), inbox=inbox)
    headers = {"x-avaturn-token": TOKEN}
    body, other = event_to_bytes(make_render_ready()), event_to_bytes(make_render_ready())
    outcomes = [(await pipeline.handle(b, headers)).outcome for b in (body, body, other)]
    router, calls = recording_router()
    await dispatch(inbox, router, limit=10)
    assert (outcomes, len(calls)) == (["stored", "duplicate", "stored"], 2)


async def test_expired_lease_makes_a_claimed_unfinished_event_due_again(
    inbox: WebhookInbox, clock: FakeClock
) -> None:
    await deliver(inbox)
    second_router, second_calls = recording_router()
    while_leased: list[int] = []
    stalled = WebhookRouter()

    @stalled.on_any
    async def stall(event: Event) -> None:
        # A worker that is stuck (or dead) holding the claim: another worker looks.
        while_leased.append(await dispatch(inbox, second_router))
        clock.advance(LEASE)
        while_leased.append(await dispatch(inbox, second_router))

    await dispatch(inbox, stalled)
    record = await only_record(inbox)
    assert (while_leased, len(second_calls)) == ([0, 1], 1)
    assert (record.status, record.attempts) == (InboxStatus.DONE, 2)


async def test_lease_expiring_on_the_last_attempt_dead_letters_the_event(
    inbox: WebhookInbox, clock: FakeClock
) -> None:
    await deliver(inbox)
    other_router, other_calls = recording_router()
    crashing = WebhookRouter()

    @crashing.on_any
    async def crash(event: Event) -> None:
        clock.advance(LEASE)
        await dispatch(inbox, other_router, max_attempts=1)

    await dispatch(inbox, crashing, max_attempts=1)
    record = await only_record(inbox)
    assert (record.status, other_calls) == (InboxStatus.DEAD, [])
    assert (record.last_error or "").startswith("LeaseExpired:")


async def test_cancelled_worker_gives_its_claim_back_uncounted(inbox: WebhookInbox) -> None:
    await deliver(inbox)
    started = anyio.Event()
    hanging = WebhookRouter()

    @hanging.on_any
    async def hang(event: Event) -> None:
        started.set()
        await anyio.sleep_forever()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(dispatch, inbox, hanging)
            await started.wait()
            group.cancel_scope.cancel()
    pending = await only_record(inbox)
    router, calls = recording_router()
    assert (pending.status, pending.attempts) == (InboxStatus.PENDING, 0)
    assert (await dispatch(inbox, router), len(calls)) == (1, 1)


async def test_database_error_while_recording_leaves_the_event_to_its_lease(
    inbox: WebhookInbox, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await deliver(inbox)

    async def unavailable(*args: object, **kwargs: object) -> bool:
        raise OSError("database unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(inbox.store, "complete", unavailable)
        assert await dispatch(inbox, recording_router()[0]) == 1  # logged, not raised
    clock.advance(LEASE)
    assert await dispatch(inbox, recording_router()[0]) == 1
    record = await only_record(inbox)
    assert (record.status, record.attempts) == (InboxStatus.DONE, 2)


async def test_worker_context_dispatches_events_stored_while_it_runs(
    inbox: WebhookInbox,
) -> None:
    router, calls = WebhookRouter(), []
    dispatched = anyio.Event()

    @router.on_any
    async def record(event: Event) -> None:
        calls.append(event)
        dispatched.set()

    async with inbox.worker(router, poll_interval=0.01):
        _, event = await deliver(inbox)
        with anyio.fail_after(5):
            await dispatched.wait()
    assert calls == [event]


async def test_dispatch_due_claims_at_most_limit_events(inbox: WebhookInbox) -> None:
    for _ in range(5):
        await deliver(inbox)
    router, calls = recording_router()
    assert (await dispatch(inbox, router, limit=3), len(calls)) == (3, 3)


async def test_replay_moves_dead_events_back_to_pending_with_attempts_reset(
    inbox: WebhookInbox,
) -> None:
    await deliver(inbox)
    await dispatch(inbox, recording_router(failures=1)[0], max_attempts=1)
    dead = await only_record(inbox)
    replayed = await inbox.replay(all_dead=True)
    record = await only_record(inbox)
    assert (dead.status, replayed) == (InboxStatus.DEAD, (dead.id,))
    assert (record.status, record.attempts) == (InboxStatus.PENDING, 0)
    assert await dispatch(inbox, recording_router()[0]) == 1


async def test_replay_by_id_skips_events_that_are_not_dead(inbox: WebhookInbox) -> None:
    await deliver(inbox)
    (pending,) = await inbox.list()
    assert await inbox.replay([pending.id, 999]) == ()


async def test_last_error_names_the_exception_and_redacts_url_queries(
    inbox: WebhookInbox,
) -> None:
    await deliver(inbox)
    error = ValueError("cannot fetch https://cdn.example/a.glb?X-Amz-Signature=s3cr3t")
    await dispatch(inbox, recording_router(failures=1, error=error)[0])
    record = await only_record(inbox)
    assert record.last_error == "ValueError: cannot fetch https://cdn.example/a.glb?<redacted>"


async def test_unparseable_stored_body_is_dead_lettered_at_once(inbox: WebhookInbox) -> None:
    await inbox.add(b"[]", {"webhook-id": "msg_bad"}, make_render_ready())
    router, calls = recording_router()
    await dispatch(inbox, router)
    record = await only_record(inbox)
    assert (record.status, record.attempts, calls) == (InboxStatus.DEAD, 1, [])
    assert (record.last_error or "").startswith("WebhookParseError")


async def test_purge_deletes_only_done_events_older_than_the_retention(
    inbox: WebhookInbox, clock: FakeClock
) -> None:
    await deliver(inbox)
    await deliver(inbox)
    await dispatch(inbox, recording_router(failures=1)[0], max_attempts=1)  # dead
    await dispatch(inbox, recording_router()[0])  # done
    clock.advance(timedelta(days=2).total_seconds())
    await deliver(inbox)
    await dispatch(inbox, recording_router()[0])  # done, but recent
    assert await inbox.purge(older_than=timedelta(days=1)) == 1
    assert await inbox.counts() == {"pending": 0, "done": 1, "dead": 1}
