"""Counting exported records by component, artifact, compile id and rank.

Used by ``torch-otel demo`` (live, through :class:`SummaryExporter`) and by
``torch-otel summary`` (offline, from OTLP/JSON files).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch_otel import names


@dataclass
class RecordTally:
    """Counts of records; each record is counted once (chunks of one record once)."""

    by_origin: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_compile_id: Counter[str] = field(default_factory=Counter)
    by_rank: Counter[str] = field(default_factory=Counter)
    largest: list[tuple[int, str, str, str]] = field(default_factory=list)
    total: int = 0
    bytes_total: int = 0

    def add(self, attributes: dict[str, Any], body_length: int, resource_rank: Any = None) -> None:
        chunk_index = attributes.get(names.TORCH_ARTIFACT_CHUNK_INDEX)
        self.bytes_total += body_length
        if chunk_index not in (None, 0):
            self._grow_largest(attributes, body_length)
            return
        component = str(attributes.get(names.TORCH_COMPONENT, "?"))
        artifact = str(attributes.get(names.TORCH_ARTIFACT, "-"))
        self.by_origin[(component, artifact)] += 1
        self.by_compile_id[str(attributes.get(names.TORCH_COMPILE_TRACE_ID, "-"))] += 1
        rank = attributes.get(names.TORCH_DISTRIBUTED_RANK, resource_rank)
        self.by_rank["-" if rank is None else str(rank)] += 1
        self.total += 1
        self._grow_largest(attributes, body_length)

    def _grow_largest(self, attributes: dict[str, Any], body_length: int) -> None:
        group = attributes.get(names.TORCH_ARTIFACT_CHUNK_GROUP)
        key = str(group) if group else None
        artifact = str(
            attributes.get(names.TORCH_ARTIFACT, attributes.get(names.TORCH_COMPONENT, "?"))
        )
        trace_id = str(attributes.get(names.TORCH_COMPILE_TRACE_ID, "-"))
        if key is not None:
            for index, (size, a, t, g) in enumerate(self.largest):
                if g == key:
                    self.largest[index] = (size + body_length, a, t, g)
                    break
            else:
                self.largest.append((body_length, artifact, trace_id, key))
        else:
            self.largest.append((body_length, artifact, trace_id, ""))
        self.largest.sort(reverse=True)
        del self.largest[10:]


class SummaryExporter:
    """An SDK log exporter that only tallies what it is given (for the demo's table)."""

    def __init__(self) -> None:
        self.tally = RecordTally()

    def export(self, batch: Sequence[Any]) -> Any:
        from opentelemetry.sdk._logs.export import LogRecordExportResult

        for readable in batch:
            record = readable.log_record
            body = record.body if isinstance(record.body, str) else ""
            self.tally.add(dict(record.attributes or {}), len(body))
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))
    rule = "  ".join("-" * w for w in widths)
    body = [
        "  ".join(
            cell.rjust(w) if cell.replace(".", "").isdigit() else cell.ljust(w)
            for cell, w in zip(row, widths, strict=False)
        )
        for row in rows
    ]
    return "\n".join([line, rule, *body])


def origin_table(tally: RecordTally) -> str:
    rows = [
        (component, artifact, count)
        for (component, artifact), count in sorted(tally.by_origin.items())
    ]
    rows.append(("total", "", tally.total))
    return format_table(("component", "artifact", "records"), rows)


def summarize_files(paths: list[str], out: Any, err: Any, *, top: int = 10) -> int:
    """``torch-otel summary``: tables from OTLP/JSON files; bad lines reported, skipped.

    Exit status 0, or 1 when nothing at all could be read (every line bad or no
    request in any file); a file that cannot be opened is a ConfigError (exit 2).
    De-duplicated records (``torch.artifact.body_ref``) count with the length of the
    body they refer to, found anywhere in the inputs (``body_refs.py``), so the tables
    are those of the same run without ``dedup``.
    """
    from torch_otel.cli.body_refs import body_ref, length_index
    from torch_otel.cli.health_summary import HealthTally, health_tables
    from torch_otel.cli.otlp_json import BadLine, flatten_logs, flatten_metrics, iter_requests

    tally = RecordTally()
    health = HealthTally()
    lengths = length_index()
    references: list[tuple[dict[str, Any], str, Any]] = []
    bad: list[BadLine] = []
    signals: Counter[str] = Counter()
    for path in paths:
        for signal, request in iter_requests(path, bad_lines=bad):
            signals[signal] += 1
            if signal == "metrics":
                health.add_points(flatten_metrics(request))
            if signal != "logs":
                continue
            for record in flatten_logs(request):
                health.add_log(record)
                rank = record.resource.get(names.TORCH_DISTRIBUTED_RANK)
                digest = body_ref(record.attributes)
                if digest is not None:
                    references.append((record.attributes, digest, rank))
                    continue
                body = record.body if isinstance(record.body, str) else ""
                length = len(body.encode("utf-8"))
                lengths.add(record.attributes, length)
                tally.add(record.attributes, length, rank)
    unresolved = 0
    for attributes, digest, rank in references:
        length = lengths.resolve(digest)
        unresolved += length is None
        tally.add(attributes, length or 0, rank)
    for problem in bad:
        print(f"{problem.path}:{problem.line_number}: skipped: {problem.error}", file=err)
    if not signals:
        print("torch-otel: summary: no OTLP export request could be read", file=err)
        return 1
    if unresolved:
        print(
            f"torch-otel: warning: {unresolved} records refer to a body (dedup) that is not "
            "in these files; counted with length 0",
            file=err,
        )
    print(
        f"{tally.total} records ({tally.bytes_total / 2**20:.1f} MiB of text) from "
        f"{sum(signals.values())} export requests in {len(paths)} file(s)",
        file=out,
    )
    print("", file=out)
    print(origin_table(tally), file=out)
    print("", file=out)
    ranks = sorted(tally.by_rank.items(), key=lambda item: (item[0] == "-", item[0]))
    print(format_table(("rank", "records"), ranks), file=out)
    print("", file=out)
    compile_rows = sorted(tally.by_compile_id.items(), key=lambda item: -item[1])[:top]
    print(format_table(("compile id", "records"), compile_rows), file=out)
    print("", file=out)
    largest = [
        (f"{size / 1024:.1f} KiB", artifact, trace_id)
        for size, artifact, trace_id, _ in tally.largest[:top]
    ]
    print(format_table(("largest", "artifact", "compile id"), largest), file=out)
    for table in health_tables(health, format_table, top=top):
        print("", file=out)
        print(table, file=out)
    return 0
