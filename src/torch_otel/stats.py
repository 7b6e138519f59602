"""Counters that make every lost record visible.

Reasons for dropping are a closed vocabulary so that dashboards and the exit
message can rely on them:

``queue_full``
    the buffer between the compile thread and the exporter was at its record
    or byte limit (collector down or slow for longer than the buffer covers);
``rejected``
    the collector answered with a permanent error (bad request, too large);
``export_failed``
    an exporter kept failing for an unknown reason and the batch was given up;
``shutdown``
    still queued or unsent when the exit flush deadline passed;
``render_error``
    a record could not be turned into an OTel record at all (never expected:
    bad content is normally exported with a marker instead).

With ``dedup``, ``bodies`` counts what happened to each large body (per record
built): ``published`` (first in the job: sent in full), ``referenced`` (sent
before: sent as a reference) and ``uncoordinated`` (sent in full because the
job's store could not be asked: no process group, a store error or timeout).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class StatsSnapshot:
    """A consistent copy of the counters at one moment."""

    records_accepted: int
    records_emitted: int
    records_exported: int
    dropped: dict[str, int] = field(default_factory=dict)
    bodies: dict[str, int] = field(default_factory=dict)

    @property
    def records_dropped(self) -> int:
        return sum(self.dropped.values())

    def describe_drops(self) -> str:
        parts = [f"{count} {reason}" for reason, count in sorted(self.dropped.items()) if count]
        return ", ".join(parts)


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
        self._lock = threading.Lock()
        self.records_accepted = 0
        self.records_emitted = 0
        self.records_exported = 0
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

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                records_accepted=self.records_accepted,
                records_emitted=self.records_emitted,
                records_exported=self.records_exported,
                dropped={reason: count for reason, count in self._dropped.items() if count},
                bodies={outcome: count for outcome, count in self._bodies.items() if count},
            )

    def reset_after_fork(self) -> None:
        """A forked child starts from zero: the parent reports its own counts."""
        self._lock = threading.Lock()
        self.records_accepted = 0
        self.records_emitted = 0
        self.records_exported = 0
        self._dropped = Counter()
        self._bodies = Counter()
