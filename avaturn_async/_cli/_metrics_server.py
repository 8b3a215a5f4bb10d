"""``--metrics-port``: the commands' metrics and health probes over HTTP.

* ``/metrics``: every metric of the SDK in the Prometheus text format, through
  OpenTelemetry's Prometheus exporter (``PrometheusMetricReader`` feeding
  ``prometheus_client``'s registry); collected in a worker thread, so the gauges
  of database state query their database on the command's own event loop;
* ``/healthz``: liveness, 200 while the process and its loop answer; it never
  touches a database;
* ``/readyz``: readiness, 200 when the command's database answers a trivial query
  within two seconds, else 503 (a JSON body says which check failed).

The commands install the OpenTelemetry SDK themselves (a library never does):
unless the process already has a ``MeterProvider``, one is installed with the
Prometheus reader and ``service.name`` set to the command.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from .._errors import ConfigurationError
from .._health import check_readiness

__all__ = ["install_prometheus", "serving_metrics"]

_NEEDS_EXTRA = "--metrics-port needs the otel extra: pip install 'avaturn-async[otel]'"


def install_prometheus(service: str) -> None:
    """Install the metrics SDK with a Prometheus reader, unless a provider is installed.

    Raises :class:`ConfigurationError` without the ``otel`` extra.
    """
    from .._metrics import sdk_installed

    try:
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
    except ImportError:
        raise ConfigurationError(_NEEDS_EXTRA) from None
    if sdk_installed():
        return
    resource = Resource.create({"service.name": service})
    provider = MeterProvider(metric_readers=[PrometheusMetricReader()], resource=resource)
    metrics.set_meter_provider(provider)


def _exposition() -> tuple[bytes, str]:
    """The registry in the Prometheus text format (runs a collection: call off the loop)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(), CONTENT_TYPE_LATEST


def _app(checks: Mapping[str, Callable[[], Awaitable[object]]]) -> Any:
    import anyio.to_thread
    from aiohttp import web

    async def metrics(request: web.Request) -> web.Response:
        body, content_type = await anyio.to_thread.run_sync(_exposition)
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        found = await check_readiness(checks)
        return web.Response(status=found.status, body=found.body(), content_type="application/json")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


@asynccontextmanager
async def serving_metrics(
    host: str, port: int, checks: Mapping[str, Callable[[], Awaitable[object]]]
) -> AsyncIterator[str]:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` (``checks`` by name) on ``host:port``
    for the block; yields the base URL (with the real port when ``port`` is 0)."""
    from aiohttp import web

    runner = web.AppRunner(_app(checks), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = int(runner.addresses[0][1])
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound}"
    finally:
        await runner.cleanup()
