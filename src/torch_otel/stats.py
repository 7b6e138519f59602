"""Counters that make every lost record visible, and the one line that reports them.

Reasons for dropping are a closed vocabulary (``names.drop_reasons()``, documented in
``docs/reference.md``) so that dashboards and the exit message can rely on them:
``queue_full`` (the buffer was at its bound), ``rejected`` (a permanent error),
``redirected`` (an HTTP 3xx: nothing delivered), ``bad_response`` (a 2xx that is not
an OTLP answer), ``partially_rejected`` (a partial success's refused records),
``export_failed`` (unknown failures, given up), ``shutdown`` (still queued when the
exit flush ended), ``after_shutdown`` (logged after the exit flush began to close),
``render_error`` (a batch that could not be encoded).

With ``dedup``, ``bodies`` counts what happened to each large body (per record
built): ``published`` (first in the job: sent in full), ``referenced`` (sent
before: sent as a reference) and ``uncoordinated`` (sent in full because the
job's store could not be asked: no process group, a store error or timeout).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from torch_otel import names


@dataclass
class StatsSnapshot:
    """A consistent copy of the counters at one moment."""

    records_accepted: int
    records_emitted: int
    records_exported: int
    dropped: dict[str, int] = field(default_factory=dict)
    records_spilled: int = 0
    """Records written to the spill directory (each once, whatever the sinks)."""
    spill_torn: int = 0
    """Spill segments that ended in a torn or corrupt frame (its records are lost)."""
    bodies: dict[str, int] = field(default_factory=dict)
    """With ``dedup``: large bodies ``published``, ``referenced`` or ``uncoordinated``."""

    @property
    def records_dropped(self) -> int:
        return sum(self.dropped.values())

    def describe_drops(self) -> str:
        parts = [f"{count} {reason}" for reason, count in sorted(self.dropped.items()) if count]
        return ", ".join(parts)

    @property
    def records_offered(self) -> int:
        """Records torch handed to the bridge: accepted, or refused at the buffer."""
        refused = sum(self.dropped.get(reason, 0) for reason in OFFER_TIME_DROPS)
        return self.records_accepted + refused


OFFER_TIME_DROPS = (names.DROP_QUEUE_FULL, names.DROP_SPILL_FULL, names.DROP_AFTER_SHUTDOWN)
"""Drops that happen when a record is offered (it was never accepted)."""


def exit_line(
    snapshot: StatsSnapshot,
    last_error: str | None,
    interrupted_by: str | None = None,
    *,
    left_on_disk: int = 0,
    spill_directory: str | None = None,
) -> str | None:
    """The one stderr line at exit, or None when everything went out.

    Without a spill directory: ``N of M compile log records were not exported
    (reasons)``. With one: records delivered, records left on disk (and how to send
    them), records dropped by reason.
    """
    if not (snapshot.records_dropped or left_on_disk or interrupted_by):
        return None
    head = "torch-otel: "
    if interrupted_by is not None:
        head += f"exit flush interrupted by {interrupted_by}; "
    drops = f" ({snapshot.describe_drops()})" if snapshot.records_dropped else ""
    if spill_directory is None:
        line = (
            f"{head}{snapshot.records_dropped} of {snapshot.records_offered} compile log "
            f"records were not exported{drops}"
        )
    else:
        line = (
            f"{head}{snapshot.records_exported} of {snapshot.records_offered} compile log "
            f"records delivered, {left_on_disk} left on disk in {spill_directory} "
            f"(torch-otel replay {spill_directory} sends them), "
            f"{snapshot.records_dropped} dropped{drops}"
        )
    return line + (f"; last error: {last_error}" if last_error else "")


class BridgeStats:
    """Thread-safe counters of what went through the bridge.

    * ``records_accepted``: torch records queued for export;
    * ``records_emitted``: OTel log records built from them (a chunked record
      becomes several);
    * ``records_exported``: OTel log records the exporter(s) acknowledged;
    * ``dropped``: records lost, by reason (see module docstring);
    * ``bodies``: with ``dedup``, large bodies by outcome (see module docstring).
    """

    def __init__(self) -> None:
        self._start_from_zero()

    def _start_from_zero(self) -> None:
        self._lock = threading.Lock()
        self.records_accepted = 0
        self.records_emitted = 0
        self.records_exported = 0
        self.records_spilled = 0
        self.spill_torn = 0
        self._dropped: Counter[str] = Counter()
        self._bodies: Counter[str] = Counter()

    def count_accepted(self) -> None:
        # Called on the compile thread under the buffer's lock; a plain
        # increment is enough there and avoids a second lock.
        self.records_accepted += 1

    def count_drop(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self._dropped[reason] += count

    def count_body(self, outcome: str) -> None:
        with self._lock:
            self._bodies[outcome] += 1

    def count_emitted(self, count: int) -> None:
        with self._lock:
            self.records_emitted += count

    def count_exported(self, count: int) -> None:
        with self._lock:
            self.records_exported += count

    def count_spilled(self, count: int) -> None:
        with self._lock:
            self.records_spilled += count

    def count_spill_torn(self) -> None:
        with self._lock:
            self.spill_torn += 1

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                records_accepted=self.records_accepted,
                records_emitted=self.records_emitted,
                records_exported=self.records_exported,
                dropped={reason: count for reason, count in self._dropped.items() if count},
                records_spilled=self.records_spilled,
                spill_torn=self.spill_torn,
                bodies={outcome: count for outcome, count in self._bodies.items() if count},
            )

    def reset_after_fork(self) -> None:
        """A forked child starts from zero (fresh lock too): the parent reports its own."""
        self._start_from_zero()
