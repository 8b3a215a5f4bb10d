"""The emulator's route names and the counters tests assert on."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ROUTES", "EmulatorStats"]

ROUTES: tuple[str, ...] = (
    "users.create",
    "users.delete",
    "sessions.create",
    "avatars.list",
    "avatars.create",
    "avatars.get_customization",
    "avatars.set_customization",
    "avatars.delete",
    "renders.create",
    "exports.create",
    "upload",
)
"""Route names for :meth:`AvaturnEmulator.fail_next`, fault plans and ``stats.requests``."""


@dataclass
class EmulatorStats:
    """Counters for assertions. ``upload_bytes`` counts photo bytes received.

    Faults (see :class:`~avaturn_async.testing.FaultPlan`):

    - ``faults``: applied faults by ``"<route>:<kind>:<before|after>"`` (``after``:
      the request was handled, then its answer was lost), ``"upload:slow_upload"``
      for slowly read uploads and ``"webhook:<drop|duplicate|delay>"`` for events.
    - ``ambiguous_creates``: by route, the ids of what a request created (a user,
      an avatar, a session, a render; for ``upload``, the avatar whose photos
      landed) although its answer was lost. Ids created by answered requests, or by
      requests that failed before acting, are never listed.
    """

    users_created: int = 0
    avatars_created: int = 0
    uploads: int = 0
    upload_bytes: int = 0
    renders_created: int = 0
    exports_started: int = 0
    downloads: int = 0
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROUTES, 0))
    in_flight: int = 0
    max_in_flight: int = 0
    rate_limited: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    ambiguous_creates: dict[str, list[str]] = field(default_factory=dict)

    def count_fault(self, key: str) -> None:
        self.faults[key] = self.faults.get(key, 0) + 1

    def fault_count(
        self, route: str | None = None, kind: str | None = None, *, acted: bool | None = None
    ) -> int:
        """Applied request faults matching every given filter (``kind`` as in ``FaultKind``)."""
        wanted = (route, kind, None if acted is None else ("after" if acted else "before"))
        total = 0
        for key, count in self.faults.items():
            parts = key.split(":")
            if len(parts) == 3 and all(w in (None, p) for p, w in zip(parts, wanted, strict=True)):
                total += count
        return total
