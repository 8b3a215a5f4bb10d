"""One configuration story: each option means one thing, and ``with_options`` derives cheaply."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import pytest

from avaturn_async import (
    DEFAULT_BASE_URL,
    AdaptiveConcurrency,
    AdaptiveLimiter,
    AiohttpTransport,
    AvaturnClient,
    ClientClosedError,
    ClientOptions,
    Clock,
    ConfigurationError,
    Request,
    Response,
    RetryPolicy,
    ServerError,
    Timeouts,
)
from tests.support import json_answer, scripted_server

KEY = "sk_test_options"


def test_adaptive_is_on_by_default_with_the_default_settings() -> None:
    client = AvaturnClient(KEY)
    assert (client.adaptive, type(client.backoff)) == (AdaptiveConcurrency(), AdaptiveLimiter)


def test_adaptive_false_turns_the_shared_backoff_off() -> None:
    client = AvaturnClient(KEY, adaptive=False)
    assert (client.adaptive, client.backoff) == (None, None)


def test_adaptive_attribute_is_the_settings_passed_in() -> None:
    settings = AdaptiveConcurrency(default_pause=2.0)
    assert AvaturnClient(KEY, adaptive=settings).adaptive is settings


def test_adaptive_none_still_turns_it_off_with_a_deprecation_warning() -> None:
    with pytest.deprecated_call():
        client = AvaturnClient(KEY, adaptive=None)  # type: ignore[arg-type]
    assert client.backoff is None


def test_retry_none_still_means_the_default_with_a_deprecation_warning() -> None:
    with pytest.deprecated_call():
        client = AvaturnClient(KEY, retry=None)  # type: ignore[arg-type]
    assert client.retry == RetryPolicy()


def test_timeouts_none_still_means_the_default_with_a_deprecation_warning() -> None:
    with pytest.deprecated_call():
        client = AvaturnClient(KEY, timeouts=None)  # type: ignore[arg-type]
    assert client.timeouts == Timeouts()


def test_tracing_none_still_means_auto_with_a_deprecation_warning() -> None:
    with pytest.deprecated_call():
        AvaturnClient(KEY, tracing=None)  # type: ignore[arg-type]


def test_tracing_rejects_values_other_than_true_false_auto() -> None:
    with pytest.raises(ConfigurationError, match="tracing"):
        AvaturnClient(KEY, tracing="on")  # type: ignore[arg-type]


def test_retry_off_is_one_attempt_for_rate_limiting_too() -> None:
    assert (RetryPolicy.off().max_attempts, RetryPolicy.off().max_rate_limit_attempts) == (1, 1)


def test_a_clock_that_is_not_a_clock_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="clock"):
        AvaturnClient(KEY, clock=object())  # type: ignore[arg-type]


async def test_clock_sleep_receives_the_retry_waits() -> None:
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)

    clock = Clock(sleep=record, random=lambda: 1.0)
    async with (
        scripted_server(json_answer(503), json_answer(200, {"id": "U"})) as server,
        AvaturnClient(KEY, base_url=server.base_url, clock=clock) as client,
    ):
        await client.users.create()
    assert waits == [0.5]


# ------------------------------------------------------------------ with_options


async def test_with_options_changes_only_what_it_is_given() -> None:
    async with AvaturnClient(KEY, retry=RetryPolicy(max_attempts=7)) as client:
        derived = client.with_options(timeout=5.0)
        assert (derived.timeouts.request, derived.timeouts.connect, derived.retry) == (
            5.0,
            client.timeouts.connect,
            client.retry,
        )


async def test_with_options_max_attempts_evolves_the_retry_policy() -> None:
    async with AvaturnClient(KEY, retry=RetryPolicy(max_delay=3.0)) as client:
        derived = client.with_options(max_attempts=2)
        assert derived.retry == RetryPolicy(max_delay=3.0, max_attempts=2)


async def test_with_options_leaves_the_parent_unchanged() -> None:
    async with AvaturnClient(KEY) as client:
        client.with_options(retry=RetryPolicy.off(), timeout=1.0)
        assert (client.retry, client.timeouts) == (RetryPolicy(), Timeouts())


class CountingTransport(AiohttpTransport):
    """The default transport, counting what goes through it and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.closes = 0

    async def send(
        self, request: Request, *, url: str, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response:
        self.sent += 1
        return await super().send(request, url=url, headers=headers, timeouts=timeouts)

    async def aclose(self) -> None:
        self.closes += 1
        await super().aclose()


async def test_derived_client_sends_through_the_parent_transport() -> None:
    transport = CountingTransport()
    async with (
        scripted_server(json_answer(200, {"id": "U"})) as server,
        AvaturnClient(KEY, base_url=server.base_url, transport=transport) as client,
    ):
        await client.with_options(max_attempts=1).users.create()
        await client.with_options(timeout=9.0).users.create()
        assert transport.sent == 2


async def test_closing_a_derived_client_does_not_close_the_shared_transport() -> None:
    transport = CountingTransport()
    async with (
        scripted_server(json_answer(200, {"id": "U"})) as server,
        AvaturnClient(KEY, base_url=server.base_url, transport=transport) as client,
    ):
        async with client.with_options(timeout=3.0) as derived:
            await derived.users.create()
        assert transport.closes == 0


async def test_derived_client_resources_are_bound_to_the_derived_client() -> None:
    errors: list[object] = []
    async with (
        scripted_server(json_answer(500)) as server,
        AvaturnClient(KEY, base_url=server.base_url, retry=RetryPolicy.off()) as client,
    ):
        derived = client.with_options(on_error=errors.append)
        with pytest.raises(ServerError):
            await derived.users.create()
        with pytest.raises(ServerError):
            await client.users.create()
    assert len(errors) == 1


async def test_closing_a_derived_client_keeps_the_parent_open() -> None:
    async with (
        scripted_server(json_answer(200, {"id": "U"})) as server,
        AvaturnClient(KEY, base_url=server.base_url) as client,
    ):
        await client.users.create()
        async with client.with_options(timeout=3.0) as derived:
            await derived.users.create()
        user = await client.users.create()
    assert (derived.closed, user.id) == (True, "U")


async def test_closing_the_parent_closes_its_derived_clients() -> None:
    client = AvaturnClient(KEY, base_url="http://127.0.0.1:9")
    derived = client.with_options(timeout=3.0)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await derived.users.create()


# ------------------------------------------------------------------ options as a value


def test_options_is_one_frozen_value_of_what_was_passed() -> None:
    retry = RetryPolicy(max_attempts=3)
    options = AvaturnClient(KEY, retry=retry, max_concurrency=4, adaptive=False).options
    assert options == ClientOptions(
        base_url=DEFAULT_BASE_URL, retry=retry, max_concurrency=4, adaptive=None
    )


def test_with_options_derives_a_new_value_and_leaves_the_parents() -> None:
    client = AvaturnClient(KEY)
    derived = client.with_options(timeout=5.0, tracing=False)
    expected = attrs.evolve(client.options, timeouts=Timeouts(request=5.0), tracing=False)
    assert (derived.options, client.options) == (expected, ClientOptions())


def test_with_options_tracing_none_still_means_auto_with_a_deprecation_warning() -> None:
    client = AvaturnClient(KEY, tracing=False)
    with pytest.deprecated_call():
        derived = client.with_options(tracing=None)  # type: ignore[arg-type]
    assert derived.options.tracing == "auto"


def test_a_derived_client_shares_the_parents_backoff() -> None:
    client = AvaturnClient(KEY)
    assert client.with_options(max_attempts=1).backoff is client.backoff


def test_options_cannot_be_changed_in_place() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        AvaturnClient(KEY).options.retry = RetryPolicy.off()  # type: ignore[misc]


@pytest.mark.parametrize("name", ["retry", "timeouts", "adaptive", "clock", "base_url", "backoff"])
def test_the_clients_option_attributes_are_read_only(name: str) -> None:
    client = AvaturnClient(KEY)
    with pytest.raises(AttributeError, match="has no setter"):
        setattr(client, name, getattr(client, name))
