"""WebhookRouter: matching, sync/async handlers, concurrency, failures, cancellation."""

from __future__ import annotations

import logging
import threading

import anyio
import pytest

from avaturn_async._errors import ConfigurationError
from avaturn_async.testing import make_avatar_ready, make_export_ready, make_render_ready
from avaturn_async.webhooks import (
    AvatarReady,
    Event,
    ExportReady,
    HandlerFailure,
    RenderReady,
    UnknownEvent,
    WebhookRouter,
)

UNKNOWN = UnknownEvent(event="x.y", raw={"event": "x.y"})


async def test_handler_receives_events_of_its_type() -> None:
    router = WebhookRouter()
    seen: list[Event] = []

    @router.on(AvatarReady)
    async def handle(event: AvatarReady) -> None:
        seen.append(event)

    event = make_avatar_ready()
    await router.dispatch(event)
    assert seen == [event]


async def test_handler_ignores_events_of_other_types() -> None:
    router = WebhookRouter()
    seen: list[Event] = []
    router.on(AvatarReady)(seen.append)
    result = await router.dispatch(make_export_ready())
    assert (seen, result.handled) == ([], 0)


async def test_on_any_receives_every_event_including_unknown_ones() -> None:
    router = WebhookRouter()
    seen: list[Event] = []
    router.on_any(seen.append)
    events: list[Event] = [make_avatar_ready(), make_render_ready(), UNKNOWN]
    for event in events:
        await router.dispatch(event)
    assert seen == events


async def test_on_event_union_matches_every_event() -> None:
    router = WebhookRouter()
    seen: list[Event] = []
    router.on(Event)(seen.append)
    await router.dispatch(UNKNOWN)
    await router.dispatch(make_export_ready())
    assert len(seen) == 2


async def test_on_a_partial_union_matches_its_members_only() -> None:
    router = WebhookRouter()
    seen: list[Event] = []
    router.on(AvatarReady | ExportReady)(seen.append)
    await router.dispatch(make_render_ready())
    await router.dispatch(make_export_ready())
    assert [type(e) for e in seen] == [ExportReady]


async def test_on_several_types_matches_each_of_them() -> None:
    router = WebhookRouter()
    seen: list[Event] = []
    router.on(AvatarReady, RenderReady)(seen.append)
    for event in (make_avatar_ready(), make_export_ready(), make_render_ready()):
        await router.dispatch(event)
    assert [type(e) for e in seen] == [AvatarReady, RenderReady]


def test_on_without_types_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        WebhookRouter().on()


async def test_several_handlers_of_one_type_all_run() -> None:
    router = WebhookRouter()
    seen: list[str] = []
    router.on(RenderReady)(lambda e: seen.append("sync"))

    @router.on(RenderReady)
    async def second(event: RenderReady) -> None:
        seen.append("async")

    result = await router.dispatch(make_render_ready())
    assert (sorted(seen), result.handled) == (["async", "sync"], 2)


async def test_sync_handlers_run_in_a_worker_thread_by_default() -> None:
    router, threads = WebhookRouter(), []
    router.on_any(lambda e: threads.append(threading.get_ident()))
    await router.dispatch(UNKNOWN)
    assert threads != [threading.get_ident()]


async def test_sync_handlers_run_inline_when_asked() -> None:
    router, threads = WebhookRouter(sync_in_thread=False), []
    router.on_any(lambda e: threads.append(threading.get_ident()))
    await router.dispatch(UNKNOWN)
    assert threads == [threading.get_ident()]


async def test_sync_callable_returning_an_awaitable_is_awaited() -> None:
    router = WebhookRouter()
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    router.on_any(lambda e: record(e))
    await router.dispatch(UNKNOWN)
    assert seen == [UNKNOWN]


async def test_async_callable_object_is_awaited() -> None:
    class Handler:
        def __init__(self) -> None:
            self.seen: list[Event] = []

        async def __call__(self, event: Event) -> None:
            self.seen.append(event)

    router, handler = WebhookRouter(), Handler()
    router.on_any(handler)
    await router.dispatch(UNKNOWN)
    assert handler.seen == [UNKNOWN]


async def test_concurrent_handlers_overlap() -> None:
    router, started = WebhookRouter(), anyio.Event()

    @router.on_any
    async def waits(event: Event) -> None:
        await started.wait()

    @router.on_any
    async def releases(event: Event) -> None:
        started.set()

    with anyio.fail_after(2):
        result = await router.dispatch(UNKNOWN)
    assert result.ok


async def test_sequential_handlers_run_in_registration_order() -> None:
    router, order = WebhookRouter(concurrent=False), []
    for index in range(5):

        async def handler(event: Event, index: int = index) -> None:
            await anyio.sleep(0.001 * (5 - index))
            order.append(index)

        router.on_any(handler)
    await router.dispatch(UNKNOWN)
    assert order == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("concurrent", [True, False])
async def test_a_failing_handler_does_not_stop_the_others(concurrent: bool) -> None:
    router = WebhookRouter(concurrent=concurrent)
    seen: list[Event] = []

    @router.on_any
    async def broken(event: Event) -> None:
        raise RuntimeError("boom")

    router.on_any(seen.append)
    result = await router.dispatch(UNKNOWN)
    assert seen == [UNKNOWN]
    assert [type(f.exception) for f in result.failures] == [RuntimeError]
    assert not result.ok


async def test_failure_names_the_handler() -> None:
    router = WebhookRouter()

    def broken(event: Event) -> None:
        raise ValueError("bad")

    router.on_any(broken)
    result = await router.dispatch(UNKNOWN)
    assert result.failures[0].handler is broken
    assert result.failures[0].handler_name.endswith("broken")


async def test_on_handler_error_is_called_with_the_failure() -> None:
    reported: list[HandlerFailure] = []
    router = WebhookRouter(on_handler_error=reported.append)
    router.on_any(lambda e: 1 / 0)
    await router.dispatch(UNKNOWN)
    assert [(f.event, type(f.exception)) for f in reported] == [(UNKNOWN, ZeroDivisionError)]


async def test_async_on_handler_error_is_awaited() -> None:
    reported: list[HandlerFailure] = []

    async def report(failure: HandlerFailure) -> None:
        reported.append(failure)

    router = WebhookRouter(on_handler_error=report)
    router.on_any(lambda e: 1 / 0)
    await router.dispatch(UNKNOWN)
    assert len(reported) == 1


async def test_a_failing_error_callback_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def report(failure: HandlerFailure) -> None:
        raise RuntimeError("callback broke")

    router = WebhookRouter(on_handler_error=report)
    router.on_any(lambda e: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="avaturn_async.webhooks"):
        result = await router.dispatch(UNKNOWN)
    assert len(result.failures) == 1
    assert any("on_handler_error" in r.getMessage() for r in caplog.records)


async def test_handler_failure_is_logged_under_the_webhooks_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = WebhookRouter()
    router.on_any(lambda e: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="avaturn_async.webhooks"):
        await router.dispatch(make_export_ready())
    (record,) = [r for r in caplog.records if r.name == "avaturn_async.webhooks"]
    assert "export.ready" in record.getMessage()
    assert record.exc_info is not None


async def test_logged_failure_does_not_include_event_urls(caplog: pytest.LogCaptureFixture) -> None:
    router = WebhookRouter()
    router.on_any(lambda e: 1 / 0)
    event = make_export_ready(export_url="https://cdn.example/x.glb?sig=SECRETSIG")
    with caplog.at_level(logging.DEBUG, logger="avaturn_async.webhooks"):
        await router.dispatch(event)
    assert "SECRETSIG" not in caplog.text


@pytest.mark.parametrize("concurrent", [True, False])
async def test_cancellation_propagates_and_is_not_a_failure(concurrent: bool) -> None:
    reported: list[HandlerFailure] = []
    router = WebhookRouter(concurrent=concurrent, on_handler_error=reported.append)
    entered = anyio.Event()

    @router.on_any
    async def sleeps(event: Event) -> None:
        entered.set()
        await anyio.sleep_forever()

    router.on_any(lambda e: None)
    finished = False
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(router.dispatch, UNKNOWN)
            await entered.wait()
            scope.cancel()
        finished = True
    assert scope.cancelled_caught
    assert not finished
    assert reported == []


async def test_dispatch_without_handlers_is_ok() -> None:
    result = await WebhookRouter().dispatch(UNKNOWN)
    assert (result.ok, result.handled, result.failures) == (True, 0, ())


async def test_handlers_for_lists_matching_handlers_in_order() -> None:
    router = WebhookRouter()

    def first(e: Event) -> None: ...
    def second(e: AvatarReady) -> None: ...
    def third(e: ExportReady) -> None: ...

    router.on_any(first)
    router.on(AvatarReady)(second)
    router.on(ExportReady)(third)
    assert router.handlers_for(make_avatar_ready()) == (first, second)


def test_decorator_returns_the_handler_unchanged() -> None:
    router = WebhookRouter()

    async def handler(event: RenderReady) -> None: ...

    assert router.on(RenderReady)(handler) is handler


@pytest.mark.parametrize("bad", ["avatar.ready", 3, None])
def test_routing_on_a_non_type_is_a_configuration_error(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        WebhookRouter().on(bad)  # type: ignore[call-overload]


def test_registering_a_non_callable_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        WebhookRouter().add_handler(AvatarReady, "not callable")  # type: ignore[arg-type]
