"""What a run did: counters only (finished rows are not kept), and their report.

One vocabulary everywhere (progress, summary, ``--status``, JSON): a row is
**ready** (its avatar is ready, and exported when asked), **already done** (an
earlier run finished it: nothing was sent), **failed** (recorded in the journal
with its reason; a rerun tries again) or **invalid** (bad input or a duplicate
key: nothing was sent).
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from .._exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .._journal_records import FailureRecord

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "OnboardingSummary"]


@attrs.define(kw_only=True)
class OnboardingSummary:
    """Counters of one :func:`~avaturn_async.batch.onboard` run.

    Only counts are kept while the run goes, so memory does not grow with the
    number of rows; ``failures`` is read back from the journal at the end.
    """

    total: int | None = None
    """Rows expected, when known beforehand (for progress bars)."""
    read: int = 0
    """Rows read from the source this run, bad ones included."""
    already_done: int = 0
    """Rows an earlier run finished (nothing was sent for them)."""
    ready: int = 0
    """Rows whose avatar became ready this run (and, with exports, was exported)."""
    failed: int = 0
    """Rows that failed this run (each recorded in the journal with its reason)."""
    invalid: int = 0
    """Rows rejected before anything was sent: bad input or duplicate key."""
    elsewhere: int = 0
    """Rows another run sharing the journal worked on (a PostgreSQL journal)."""
    failed_by_kind: dict[str, int] = attrs.field(factory=dict)
    possible_orphans: int = 0
    """Create User calls that got no answer: a user may exist that no row owns."""
    avatars_adopted: int = 0
    """Avatars found on the row's user that the journal did not know, and kept."""
    avatars_replaced: int = 0
    """Avatars deleted because their photos never landed and the upload URL was lost."""
    users_created: int = 0
    """Avaturn users this run created (what ``max_new_users`` caps)."""
    user_cap: int | None = None
    """The run's ``max_new_users``, when set."""
    cap_reached: bool = False
    """The run stopped starting rows: ``max_new_users`` users were created."""
    not_started: int = 0
    """Rows left as they were because the cap was reached (a later run takes them)."""
    interrupted: bool = False
    started: float = attrs.field(factory=time.monotonic)
    finished: float | None = None
    failures: list[FailureRecord] = attrs.field(factory=list)
    """The first failures of the journal, filled in at the end of the run."""
    failures_total: int = 0

    @property
    def skipped(self) -> int:
        """Deprecated name of :attr:`already_done`."""
        return self.already_done

    @property
    def done(self) -> int:
        """Rows handled this run, whatever the outcome (progress bars count these);
        each row is counted once, in one of the counters this sums."""
        handled = (self.already_done, self.ready, self.failed, self.invalid, self.elsewhere)
        return sum(handled) + self.not_started

    def seconds_left(self, total: int | None = None) -> float | None:
        """Seconds until all ``total`` rows (default :attr:`total`) are handled at
        this run's pace, or ``None`` when it cannot be told yet.

        The pace counts only rows that needed work: already done rows cost nothing.
        """
        total = self.total if total is None else total
        worked = self.ready + self.failed + self.invalid
        if total is None or worked == 0:
            return None
        return max(total - self.done, 0) * self.elapsed / worked

    @property
    def elapsed(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return max(end - self.started, 1e-9)

    @property
    def rows_per_second(self) -> float:
        """Throughput: rows that became ready this run, per second of the run."""
        return self.ready / self.elapsed

    def add_failure(self, kind: str) -> None:
        self.failed += 1
        self.failed_by_kind[kind] = self.failed_by_kind.get(kind, 0) + 1

    @property
    def exit_code(self) -> int:
        """0 all ready, 1 some failed or invalid (or the user cap stopped it), 130 interrupted."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.failed or self.invalid or self.cap_reached else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """The counts as JSON-ready data, keyed with the same words as the report."""
        return {
            "read": self.read,
            "ready": self.ready,
            "already_done": self.already_done,
            "failed": self.failed,
            "invalid": self.invalid,
            "by_other_runs": self.elsewhere,
            "not_started": self.not_started,
            "failed_by_kind": dict(self.failed_by_kind),
            "possible_orphans": self.possible_orphans,
            "avatars_adopted": self.avatars_adopted,
            "avatars_replaced": self.avatars_replaced,
            "users_created": self.users_created,
            "cap_reached": self.cap_reached,
            "interrupted": self.interrupted,
            "seconds": round(self.elapsed, 3),
            "rows_per_second": round(self.rows_per_second, 3),
        }

    def format(self) -> str:
        """The final report: outcome counts, throughput, then failures with reasons."""
        head = "interrupted" if self.interrupted else "finished"
        lines = [
            f"Onboarding {head} in {self.elapsed:.1f} s: {self.read} rows read, "
            f"{self.ready} ready, {self.already_done} already done, {self.failed} failed, "
            f"{self.invalid} invalid ({self.rows_per_second:.1f} rows/s)"
        ]
        if self.failed_by_kind:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.failed_by_kind.items()))
            lines.append(f"  failures by kind: {kinds}")
        if self.elsewhere:
            lines.append(f"  {self.elsewhere} row(s) handled by other runs sharing the journal")
        if self.cap_reached:
            lines.append(
                f"  stopped starting rows: {self.users_created} new users reached the cap "
                f"(--max-new-users {self.user_cap}); {self.not_started} row(s) not started, "
                "left for a later run"
            )
        if self.avatars_adopted or self.avatars_replaced:
            lines.append(
                f"  reconciled: {self.avatars_adopted} avatar(s) adopted, "
                f"{self.avatars_replaced} replaced"
            )
        if self.possible_orphans:
            lines.append(
                f"  possible orphan users: {self.possible_orphans} (a Create User got no "
                "answer; the user it may have made belongs to no row)"
            )
        if self.failures:
            more = self.failures_total - len(self.failures)
            suffix = f" (and {more} more: avaturn onboard --status)" if more > 0 else ""
            lines.append(f"  failed and invalid rows in the journal{suffix}:")
            lines += [f"    {_describe(failure)}" for failure in self.failures]
        if self.interrupted:
            lines.append("  rerun the same command to resume where it stopped")
        return "\n".join(lines)


def _describe(failure: FailureRecord) -> str:
    key = "-" if failure.key is None else failure.key
    kind = failure.shown_kind
    label = failure.outcome if kind == failure.outcome else f"{failure.outcome} [{kind}]"
    return f"line {failure.line} key {key}: {label}: {failure.reason}"
