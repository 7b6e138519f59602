"""``torch-otel summary``'s compile-health tables, from exported metrics and events.

Reads the compile-health metrics (``torch.compile.compiles``, ``.recompiles``,
``.graph_breaks``, ``.duration``) of OTLP/JSON metric requests, and the
``torch.compile.slow`` events of log requests. Metrics are cumulative: every
export repeats the running totals, so the latest point of each series (per
process: its resource) counts; delta points are added up instead. Then, per code
location: compiles, recompiles by reason, graph breaks by type, total compile time
(the ``total`` phase of ``torch.compile.duration``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from torch_otel import names
from torch_otel.cli.otlp_json import FlatLogRecord, FlatMetricPoint

_COUNTERS = (names.METRIC_COMPILES, names.METRIC_RECOMPILES, names.METRIC_GRAPH_BREAKS)
Location = tuple[str, str, int]  # file, function, line


def location_of(attributes: dict[str, Any]) -> Location:
    return (
        str(attributes.get(names.CODE_FILE_PATH, "?")),
        str(attributes.get(names.CODE_FUNCTION_NAME, "?")),
        int(attributes.get(names.CODE_LINE_NUMBER, 0) or 0),
    )


def describe(location: Location) -> str:
    path, function, line = location
    short = "/".join(path.replace("\\", "/").split("/")[-2:])
    return f"{short}:{line} {function}"


def _series_key(point: FlatMetricPoint) -> tuple[Any, ...]:
    return (
        point.name,
        tuple(sorted((k, str(v)) for k, v in point.resource.items())),
        tuple(sorted((k, str(v)) for k, v in point.attributes.items())),
    )


@dataclass
class HealthTally:
    """The compile-health points seen, reduced to one value per series."""

    _latest: dict[tuple[Any, ...], FlatMetricPoint] = field(default_factory=dict)
    _deltas: dict[tuple[Any, ...], list[FlatMetricPoint]] = field(default_factory=dict)
    slow: list[FlatLogRecord] = field(default_factory=list)

    def add_points(self, points: list[FlatMetricPoint]) -> None:
        for point in points:
            if point.name not in (*_COUNTERS, names.METRIC_DURATION):
                continue
            key = _series_key(point)
            if not point.cumulative:
                self._deltas.setdefault(key, []).append(point)
                continue
            seen = self._latest.get(key)
            if seen is None or point.time_unix_nano >= seen.time_unix_nano:
                self._latest[key] = point

    def add_log(self, record: FlatLogRecord) -> None:
        if record.event_name == names.EVENT_COMPILE_SLOW:
            self.slow.append(record)

    def __bool__(self) -> bool:
        return bool(self._latest or self._deltas or self.slow)

    def series(self) -> list[tuple[str, dict[str, Any], float, float]]:
        """(metric, attributes, value or count, histogram sum) per series."""
        out = []
        for points in [[p] for p in self._latest.values()] + list(self._deltas.values()):
            first = points[0]
            if first.kind == "histogram":
                value = float(sum(p.count or 0 for p in points))
                total = float(sum(p.sum or 0.0 for p in points))
            else:
                value, total = float(sum(p.value or 0 for p in points)), 0.0
            out.append((first.name, first.attributes, value, total))
        return out


@dataclass
class _Row:
    compiles: float = 0
    recompiles: float = 0
    graph_breaks: float = 0
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    breaks: Counter[tuple[str, str]] = field(default_factory=Counter)


def health_tables(tally: HealthTally, format_table: Any, *, top: int = 10) -> list[str]:
    """The tables ``summary`` prints (empty when no compile-health data was found)."""
    if not tally:
        return []
    rows: dict[Location, _Row] = defaultdict(_Row)
    for name, attributes, value, total in tally.series():
        row = rows[location_of(attributes)]
        if name == names.METRIC_COMPILES:
            row.compiles += value
        elif name == names.METRIC_RECOMPILES:
            row.recompiles += value
            row.reasons[str(attributes.get(names.TORCH_COMPILE_RECOMPILE_REASON, "?"))] += value
        elif name == names.METRIC_GRAPH_BREAKS:
            row.graph_breaks += value
            kind = str(attributes.get(names.TORCH_COMPILE_GRAPH_BREAK_TYPE, "?"))
            row.breaks[(kind, str(attributes.get(names.TORCH_COMPILE_GRAPH_BREAK_ID, "")))] += value
        elif attributes.get(names.TORCH_COMPILE_PHASE) == "total":
            row.seconds += total
    ordered = sorted(rows.items(), key=lambda item: (-item[1].seconds, -item[1].compiles))
    tables = [
        format_table(
            ("code location", "compiles", "recompiles", "graph breaks", "compile time"),
            [
                (
                    describe(location),
                    _count(row.compiles),
                    _count(row.recompiles),
                    _count(row.graph_breaks),
                    f"{row.seconds:.2f} s" if row.seconds else "-",
                )
                for location, row in ordered[:top]
            ],
        )
    ]
    reasons = [
        (describe(location), reason, _count(count))
        for location, row in ordered
        for reason, count in row.reasons.most_common()
    ]
    if reasons:
        headers = ("code location", "recompile reason", "recompiles")
        tables.append(format_table(headers, reasons[:top]))
    breaks = [
        (describe(location), kind, break_id or "-", _count(count))
        for location, row in ordered
        for (kind, break_id), count in row.breaks.most_common()
    ]
    if breaks:
        tables.append(format_table(("graph break at", "type", "id", "breaks"), breaks[:top]))
    if tally.slow:
        slow = [
            (
                str(record.attributes.get(names.TORCH_COMPILE_TRACE_ID, "?")),
                describe(location_of(record.attributes)),
                f"{float(record.attributes.get(names.TORCH_COMPILE_ELAPSED, 0.0)):.1f} s",
                str(record.attributes.get(names.TORCH_COMPILE_PHASE, "-")),
            )
            for record in tally.slow
        ]
        tables.append(format_table(("slow compile", "code location", "after", "phase"), slow))
    return tables


def _count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
