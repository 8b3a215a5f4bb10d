"""Readiness: can this process do its work now (its database answers quickly)?

Kubernetes' two probes ask different things. Liveness (``/healthz``): the
process and its event loop answer; it never touches a database, or one outage
would restart every pod at once. Readiness (``/readyz``): each database the
process needs answers a trivial query within a short timeout; a 503 takes the pod
out of the load balancer until it answers again. :func:`check_readiness` runs
the readiness checks; the receivers (``WebhookPipeline.readiness``) and the
``avaturn`` commands' ``--metrics-port`` use it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping

import attrs

__all__ = ["DEFAULT_READY_TIMEOUT", "Readiness", "check_readiness"]

DEFAULT_READY_TIMEOUT = 2.0
"""Seconds each readiness check may take (Kubernetes' probe timeout is 1 s by
default: give the probe ``timeoutSeconds: 3``)."""


@attrs.frozen(kw_only=True)
class Readiness:
    """What a readiness check found: ready when every check answered in time."""

    ready: bool
    checks: Mapping[str, str]
    """Each check's name and ``"ok"``, or why it failed (never a password)."""

    @property
    def status(self) -> int:
        """The HTTP status to answer a probe with: 200 ready, 503 not."""
        return 200 if self.ready else 503

    def body(self) -> bytes:
        """A small JSON document for the probe's answer."""
        document = {"status": "ready" if self.ready else "unavailable", "checks": self.checks}
        return json.dumps(document).encode()


async def check_readiness(
    checks: Mapping[str, Callable[[], Awaitable[object]]], *, timeout: float = DEFAULT_READY_TIMEOUT
) -> Readiness:
    """Run ``checks`` (name to a coroutine function) at once, each within ``timeout``
    seconds; ready when none raised or timed out. No checks: ready."""
    import anyio

    found: dict[str, str] = {}

    async def run(name: str, check: Callable[[], Awaitable[object]]) -> None:
        try:
            with anyio.fail_after(timeout):
                await check()
        except TimeoutError:
            found[name] = f"no answer within {timeout:g} s"
        except Exception as exc:
            found[name] = _first_line(exc)
        else:
            found[name] = "ok"

    async with anyio.create_task_group() as group:
        for name, check in checks.items():
            group.start_soon(run, name, check)
    ordered = {name: found[name] for name in checks}
    return Readiness(ready=all(v == "ok" for v in ordered.values()), checks=ordered)


def _first_line(exc: BaseException) -> str:
    """The error's type and the first line of its message; redacted of URL passwords."""
    from ._redact import redact_location, redact_urls

    lines = str(exc).splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    # A DSN's password never (our errors print DSNs redacted; this is a second net).
    words = [redact_location(word) if "://" in word else word for word in text.split(" ")]
    return redact_urls(" ".join(words))[:300]
