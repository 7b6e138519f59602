"""torch's structured-trace file format, written back: records, payloads, one file per rank.

The writing half of ``torch-otel to-tlparse`` (``to_tlparse.py`` reads the OTLP/JSON
and groups records by process; the decisions are explained there): each process's
records sorted by emission time, chunked payloads joined, de-duplicated payloads
resolved by hash, files named as torch and ``tlparse --all-ranks-html`` expect.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from torch_otel.capture._torch import TRACE_FILE_PREFIX as LOG_PREFIX
from torch_otel.cli.body_refs import BodyIndex
from torch_otel.cli.otlp_json import BadLine


@dataclass(frozen=True)
class WrittenFile:
    """One rebuilt trace file."""

    path: Path
    records: int
    pid: int | None
    rank: int | None


@dataclass(frozen=True)
class IncompleteRecord:
    """A chunked payload some of whose chunks were not in the inputs (written anyway)."""

    path: Path
    event_name: str
    group: str
    count: int
    missing: tuple[int, ...]


@dataclass
class RebuildReport:
    """What :func:`rebuild` wrote and what it had to skip or could not restore exactly."""

    files: list[WrittenFile] = field(default_factory=list)
    bad_lines: list[BadLine] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    incomplete: list[IncompleteRecord] = field(default_factory=list)
    # Records named torch.trace.* that lack the prefix/metadata attributes (skipped).
    malformed_records: int = 0
    # Records whose payload was not valid UTF-8 and was escaped by the exporter:
    # written as exported, so they differ from torch's file.
    lossy_records: int = 0
    duplicate_chunks: int = 0
    # De-duplicated payloads whose body is in none of the inputs (written empty).
    unresolved: list[tuple[Path, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Ref:
    """A de-duplicated payload: the SHA-256 of the body to put there."""

    digest: str


@dataclass
class Chunks:
    """The chunks of one payload seen so far, by index."""

    count: int
    pieces: dict[int, str] = field(default_factory=dict)


@dataclass
class TraceRecord:
    """One trace record to write: glog prefix, metadata JSON, payload (or how to get it)."""

    time: int
    seq: int
    prefix: str
    metadata: str
    body: str | Chunks | Ref
    event_name: str
    group: str = ""


@dataclass
class Process:
    """The trace records of one process; ``rank`` from its resource, ``record_rank`` from
    its records (set only where ``torch.distributed`` was initialised)."""

    pid: int | None
    rank: int | None
    identity: tuple[tuple[str, str], ...]
    records: list[TraceRecord] = field(default_factory=list)
    chunked: dict[str, TraceRecord] = field(default_factory=dict)
    record_rank: int | None = None


def write_all(
    processes: list[Process], out_dir: Path, report: RebuildReport, bodies: BodyIndex[str]
) -> None:
    ranks = _file_ranks(processes)
    names = [_file_name(process, rank) for process, rank in zip(processes, ranks, strict=True)]
    taken: dict[str, int] = {}
    for name in names:
        taken[name] = taken.get(name, 0) + 1
    order = sorted(range(len(processes)), key=lambda i: (names[i], processes[i].identity))
    for i in order:
        process, name = processes[i], names[i]
        if taken[name] > 1:
            digest = hashlib.sha1(repr(process.identity).encode()).hexdigest()[:8]
            name = name.removesuffix(".log") + f"_{digest}.log"
        path = out_dir / name
        count = _write_process(process, path, report, bodies)
        report.files.append(WrittenFile(path, count, process.pid, ranks[i]))


def _file_ranks(processes: list[Process]) -> list[int | None]:
    """The rank each process's file is named with (see ``to_tlparse.py``): the rank its
    records carry; else its resource's, unless another process's records carry that one."""
    in_group = {p.record_rank for p in processes if p.record_rank is not None}
    return [
        process.record_rank
        if process.record_rank is not None
        else (process.rank if process.rank not in in_group else None)
        for process in processes
    ]


def _file_name(process: Process, rank: int | None) -> str:
    pid = "unknown" if process.pid is None else str(process.pid)
    return f"{LOG_PREFIX}rank_{rank}_{pid}.log" if rank is not None else f"{LOG_PREFIX}{pid}.log"


def _write_process(
    process: Process, path: Path, report: RebuildReport, bodies: BodyIndex[str]
) -> int:
    """Write a process's records as ``TorchLogsFormatter(trace=True)`` + a newline each."""
    process.records.sort(key=lambda record: (record.time, record.seq))
    with path.open("w", encoding="utf-8", newline="") as out:
        for record in process.records:
            payload = _payload(record, path, report, bodies)
            out.write(f"{record.prefix} {record.metadata}")
            if payload is not None:
                out.write("".join(f"\n\t{line}" for line in payload.split("\n")))
            out.write("\n")
    return len(process.records)


def _payload(
    record: TraceRecord, path: Path, report: RebuildReport, bodies: BodyIndex[str]
) -> str | None:
    """The record's payload as torch had it: ``None`` when torch logged none."""
    body = record.body
    if isinstance(body, Ref):
        resolved = bodies.resolve(body.digest)
        if resolved is None:
            report.unresolved.append((path, body.digest))
        body = resolved or ""
    elif isinstance(body, Chunks):
        missing = tuple(i for i in range(body.count) if i not in body.pieces)
        if missing:
            report.incomplete.append(
                IncompleteRecord(path, record.event_name, record.group, body.count, missing)
            )
        body = "".join(body.pieces[i] for i in sorted(body.pieces))
    if body or _has_payload(record.metadata):
        return body
    return None


def _has_payload(metadata: str) -> bool:
    """Whether torch had a payload (maybe ``""``): it then adds ``has_payload`` (its md5)."""
    try:
        parsed = json.loads(metadata)
    except ValueError:
        return '"has_payload": ' in metadata
    return isinstance(parsed, dict) and "has_payload" in parsed
