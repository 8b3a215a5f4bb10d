"""Old names and keywords keep working for one release, and warn when used."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import avaturn_async
import avaturn_async.postgres
from avaturn_async import (
    AdaptiveConcurrency,
    AdaptiveLimiter,
    EventHub,
    InMemoryHubChannel,
    InProcessGate,
    RetryPolicy,
)
from avaturn_async.postgres import PostgresHubChannel
from avaturn_async.webhooks import InMemoryIdempotencyStore, WebhookInbox


def test_event_transport_is_the_hub_channel_and_warns() -> None:
    with pytest.deprecated_call(match="use HubChannel"):
        assert avaturn_async.EventTransport is avaturn_async.HubChannel


def test_in_memory_transport_is_the_in_memory_hub_channel_and_warns() -> None:
    with pytest.deprecated_call(match="use InMemoryHubChannel"):
        assert avaturn_async.InMemoryTransport is InMemoryHubChannel


def test_postgres_transport_is_the_postgres_hub_channel_and_warns() -> None:
    with pytest.deprecated_call(match="use PostgresHubChannel"):
        assert avaturn_async.postgres.PostgresTransport is PostgresHubChannel


def test_an_unknown_postgres_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        avaturn_async.postgres.NoSuchThing  # noqa: B018


def test_event_hub_transport_keyword_sets_the_channel_and_warns() -> None:
    channel = InMemoryHubChannel()
    with pytest.deprecated_call(match="use channel="):
        hub = EventHub(transport=channel)
    assert hub.channel is channel


def test_event_hub_transport_attribute_is_the_channel_and_warns() -> None:
    hub = EventHub()
    with pytest.deprecated_call(match="use EventHub.channel"):
        assert hub.transport is hub.channel


def test_event_hub_clock_keyword_sets_now_and_warns() -> None:
    with pytest.deprecated_call(match=r"EventHub\(clock=...\)"):
        hub = EventHub(clock=lambda: 42.0)
    assert hub.now() == 42.0


def test_idempotency_store_clock_keyword_still_ages_keys() -> None:
    now = [0.0]
    with pytest.deprecated_call(match="use now="):
        store = InMemoryIdempotencyStore(clock=lambda: now[0])
    store.seen_or_mark_sync("k")
    now[0] = 10 * 24 * 3600.0
    assert len(store) == 0


def test_gate_clock_keyword_still_times_the_pause() -> None:
    with pytest.deprecated_call(match=r"InProcessGate\(clock=...\)"):
        gate = InProcessGate(clock=lambda: 100.0)
    gate.close_for(5.0)
    paused: list[float] = []
    gate.subscribe(paused.append)
    assert paused == [5.0]


def test_adaptive_limiter_clock_keyword_warns() -> None:
    with pytest.deprecated_call(match=r"AdaptiveLimiter\(clock=...\)"):
        AdaptiveLimiter(AdaptiveConcurrency(), 4, clock=time.monotonic)


def test_retry_policy_disabled_is_off_and_warns() -> None:
    with pytest.deprecated_call(match=r"use RetryPolicy\.off\(\)"):
        assert RetryPolicy.disabled() == RetryPolicy.off()


def test_webhook_inbox_clock_keyword_warns(tmp_path: Path) -> None:
    with pytest.deprecated_call(match=r"WebhookInbox\(clock=...\)"):
        WebhookInbox(tmp_path / "inbox.db", clock=time.time)
