"""OpenTelemetry in tests: one SDK per process (the API takes one global provider),
installed on first use: an in-memory metric reader and an in-memory span exporter.

Collecting runs in a worker thread, as an SDK's periodic reader or a Prometheus
scrape does: gauges of database state then query their database on the test's
event loop (collecting on the loop itself only returns the last reading).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio.to_thread
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_installed: dict[str, Any] = {}


def span_exporter() -> InMemorySpanExporter:
    """The process's span exporter (installed on first call)."""
    if "spans" not in _installed:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _installed["spans"] = exporter
    installed: InMemorySpanExporter = _installed["spans"]
    return installed


def metric_reader() -> InMemoryMetricReader:
    """The process's in-memory metric reader (installed on first call)."""
    if "metrics" not in _installed:
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _installed["metrics"] = reader
    installed: InMemoryMetricReader = _installed["metrics"]
    return installed


Point = tuple[Mapping[str, Any], Any]


def points_of(data: Any, name: str) -> list[Point]:
    """``(attributes, point)`` of every data point of metric ``name`` in ``data``."""
    found: list[Point] = []
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
    return found


async def collect(name: str) -> list[Point]:
    """Collect now (in a worker thread) and return the points of metric ``name``."""
    data = await anyio.to_thread.run_sync(metric_reader().get_metrics_data)
    return points_of(data, name)


def matching(points: list[Point], **attributes: Any) -> list[Any]:
    """The points whose attributes include ``attributes`` (dots written as ``__``)."""
    wanted = {key.replace("__", "."): value for key, value in attributes.items()}
    return [p for attrs, p in points if all(attrs.get(k) == v for k, v in wanted.items())]


def total(points: list[Point], **attributes: Any) -> float:
    """The sum of the matching counters' values (0 when none match)."""
    return float(sum(p.value for p in matching(points, **attributes)))


def spans_named(name: str) -> list[ReadableSpan]:
    return [s for s in span_exporter().get_finished_spans() if s.name == name]
