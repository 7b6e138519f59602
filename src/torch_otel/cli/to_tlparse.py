"""Rebuild torch's structured-trace files (what ``TORCH_TRACE`` writes) from OTLP/JSON.

With ``--trace`` every record of ``torch.__trace`` is exported as an OTel log
record that keeps the glog prefix (``torch.trace.prefix``), the metadata JSON
exactly as torch wrote it (``torch.trace.metadata``) and the payload (the body,
chunked when large). That is everything torch's ``TorchLogsFormatter(trace=True)``
writes, so the trace file can be rebuilt byte for byte and fed to ``tlparse``
even when the job only shipped telemetry to a collector.

Format decisions (the "why" behind each):

* **One file per process.** torch writes one file per process; a process is
  identified by its resource: ``process.pid`` (or, if a collector dropped it,
  the pid in the glog prefix) plus whichever of :data:`IDENTITY_ATTRIBUTES`
  are present (``service.instance.id``, host/container/pod ids, rank, job
  ids, parent pid). Pids repeat across hosts and containers, so the pid alone
  would merge unrelated processes; the whole resource would split one process
  when a collector enriches its batches differently.
* **Names like torch's, one file per rank.**
  ``dedicated_log_torch_trace_rank_{rank}_{pid}.log`` when a rank is known, else
  ``dedicated_log_torch_trace_{pid}.log``. torch puts a random ``mkstemp`` suffix
  where we put the pid; ``rank_{rank}_`` is what ``tlparse DIR --all-ranks-html``
  keys on, and it wants one file per rank. So a rank's file is the process that was
  that rank in ``torch.distributed`` (its trace records carry the rank, as torch
  names its own file); a process that only inherited the launcher's ``RANK``
  (resource ``torch.distributed.rank``: a compile worker, a data-loader child) is
  named by pid alone when such a process exists, and by that rank otherwise. When
  two processes would still get the same name (same pid on two hosts, or one rank
  twice after an elastic restart), both get a short hash of their identity
  appended, so a name never depends on the other inputs.
* **De-duplicated payloads** (``dedup``: an empty body and ``torch.artifact.body_ref``)
  are replaced by the body with that ``torch.artifact.sha256`` from any record of
  the inputs, trace or not (``body_refs.py``); one that cannot be found is written
  empty and reported.
* **Order as emitted.** Records are sorted by ``time_unix_nano`` (torch's
  ``record.created``), input order breaking ties (inputs in the order given,
  lines in file order). Timestamps matter because export order is not emission
  order: torch logs its ``torch_version`` record from inside the file handler
  while it writes the first record, so the exporter sees it first but the
  file has it second.
* **Chunks.** Chunks of one payload (``torch.artifact.chunk.*``) may sit in
  different lines and files; they are joined in index order. A group with
  missing chunks is still written (its metadata and prefix are on every chunk,
  so the record itself is intact and tlparse keeps its place in the compile),
  with the chunks that are there, and it is reported: the payload is then not
  torch's (its ``has_payload`` md5 will not match). A chunk seen twice (a
  collector retry) is used once.
* **Payload or not.** The body is ``""`` both when torch had no payload and when
  it had an empty one; torch writes ``"\\n\\t"`` lines only in the second case,
  which its metadata marks with ``has_payload``, so that key decides.
* **Bad lines** (not JSON, not an OTLP request) are skipped and reported with
  file and 1-based line number (lines counted by ``"\\n"``); an input that cannot
  be opened is reported; only when no input at all can be read is it an error
  (:class:`~torch_otel.errors.ConfigError`).
* **Progress**: when the inputs total at least :data:`PROGRESS_THRESHOLD_BYTES`,
  one line per :data:`PROGRESS_STEP_PERCENT` % of bytes read goes to ``progress``
  (parsing runs at a few MB/s, so a multi-GB export takes minutes; small
  inputs finish before a progress line would help).

Everything is held in memory until written (the records of a process must be
sorted and their chunks joined): budget about the input's size in RAM.
Records that are not torch trace records (other logs, spans, metrics) are
ignored, except as sources of de-duplicated bodies. The writing half is in
``trace_files.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from torch_otel import names
from torch_otel.cli.body_refs import body_ref, text_index
from torch_otel.cli.otlp_json import BadLine, FlatLogRecord, flatten_logs, parse_line
from torch_otel.cli.trace_files import (
    Chunks,
    Process,
    RebuildReport,
    Ref,
    TraceRecord,
    write_all,
)
from torch_otel.errors import ConfigError

METADATA_ATTRIBUTE = names.TORCH_TRACE_METADATA
PREFIX_ATTRIBUTE = names.TORCH_TRACE_PREFIX
TRACE_EVENT_PREFIX = names.TORCH_TRACE_EVENT_PREFIX

PROGRESS_THRESHOLD_BYTES = 50 * 1000 * 1000
PROGRESS_STEP_PERCENT = 5

# Resource attributes that tell processes apart (besides the pid). Chosen so that
# the same process always has the same values in every batch it exports.
IDENTITY_ATTRIBUTES = (
    "service.instance.id",
    "host.id",
    "host.name",
    "container.id",
    "k8s.pod.uid",
    names.SLURM_JOB_ID,
    names.TORCH_ELASTIC_RUN_ID,
    names.TORCH_DISTRIBUTED_RANK,
    "process.parent_pid",
    "process.creation.time",
)


def rebuild(
    inputs: list[Path],
    out_dir: Path,
    *,
    progress: TextIO | None = None,
    progress_threshold: int = PROGRESS_THRESHOLD_BYTES,
) -> RebuildReport:
    """Write one torch trace file per process found in ``inputs`` (OTLP/JSON lines) to ``out_dir``.

    Raises :class:`ConfigError` when none of the inputs can be opened or
    ``out_dir`` cannot be written; everything else is collected in the report.
    An input named twice is read once (its records would otherwise be doubled).
    ``progress`` gets a line per 5 % read when the inputs total at least
    ``progress_threshold`` bytes (see the module docstring).
    """
    report = RebuildReport()
    sizes: dict[Path, int] = {}
    for path in inputs:
        try:
            with path.open("rb") as handle:
                sizes[path] = os.fstat(handle.fileno()).st_size
        except OSError as error:
            report.unreadable.append(f"{path}: cannot read: {error.strerror or error}")
    if not sizes:
        raise ConfigError(
            "INPUT", "no input can be read (" + "; ".join(report.unreadable or ["none"]) + ")"
        )
    meter = _Progress(progress if sum(sizes.values()) >= progress_threshold else None, sizes)
    processes: dict[tuple[tuple[str, str], ...], Process] = {}
    bodies = text_index()
    seq = 0
    for path in sizes:
        try:
            for record in _log_records(path, report, meter):
                if isinstance(record.body, str):
                    bodies.add(record.attributes, record.body)
                if record.event_name.startswith(TRACE_EVENT_PREFIX):
                    seq += 1
                    _add(processes, record, seq, report)
        except OSError as error:
            report.unreadable.append(f"{path}: cannot read: {error.strerror or error}")
    meter.done()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_all(list(processes.values()), out_dir, report, bodies)
    except OSError as error:
        raise ConfigError(str(out_dir), f"cannot write: {error.strerror or error}") from None
    return report


class _Progress:
    """Prints ``percent (read/total MB)`` lines as bytes are read, every few percent."""

    def __init__(self, stream: TextIO | None, sizes: dict[Path, int]) -> None:
        self.stream = stream
        self.total = max(1, sum(sizes.values()))
        self.read = 0
        self.next_percent = PROGRESS_STEP_PERCENT

    def advance(self, size: int) -> None:
        self.read += size
        if self.stream is None:
            return
        percent = self.read * 100 // self.total
        if percent >= self.next_percent and percent < 100:
            print(
                f"to-tlparse: {percent}% ({self.read / 1e6:.0f} of {self.total / 1e6:.0f} MB read)",
                file=self.stream,
                flush=True,
            )
            self.next_percent = (percent // PROGRESS_STEP_PERCENT + 1) * PROGRESS_STEP_PERCENT

    def done(self) -> None:
        if self.stream is not None:
            total = f"{self.total / 1e6:.0f}"
            print(f"to-tlparse: 100% ({total} MB read)", file=self.stream, flush=True)


def _log_records(path: Path, report: RebuildReport, meter: _Progress) -> Iterator[FlatLogRecord]:
    """The log records of one file, in file order; bad lines go to the report.

    Read in binary (not through ``iter_requests``) to count bytes for progress
    and to number lines by ``"\\n"`` only, as ``sed -n Np`` and editors do.
    """
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            meter.advance(len(raw))
            if not raw.strip():
                continue
            try:
                signal, request = parse_line(raw.decode("utf-8"))
            except Exception as error:
                problem = f"{type(error).__name__}: {error}"
                report.bad_lines.append(BadLine(str(path), number, problem))
                continue
            if signal != "logs":
                continue
            yield from flatten_logs(request)


def _add(
    processes: dict[tuple[tuple[str, str], ...], Process],
    record: FlatLogRecord,
    seq: int,
    report: RebuildReport,
) -> None:
    attributes = record.attributes
    prefix = attributes.get(PREFIX_ATTRIBUTE)
    metadata = attributes.get(METADATA_ATTRIBUTE)
    if not isinstance(prefix, str) or not isinstance(metadata, str):
        report.malformed_records += 1
        return
    process = _process_for(processes, record.resource, prefix)
    rank = attributes.get(names.TORCH_DISTRIBUTED_RANK)
    if process.record_rank is None and _is_int(rank):
        process.record_rank = rank
    body: str | Ref = record.body if isinstance(record.body, str) else ""
    digest = body_ref(attributes)
    if digest is not None:
        body = Ref(digest)
    group = attributes.get(names.TORCH_ARTIFACT_CHUNK_GROUP)
    index = attributes.get(names.TORCH_ARTIFACT_CHUNK_INDEX)
    count = attributes.get(names.TORCH_ARTIFACT_CHUNK_COUNT)
    if not (isinstance(group, str) and _is_int(index) and _is_int(count)):
        if attributes.get(names.TORCH_OTEL_RENDER_ERROR):
            report.lossy_records += 1
        process.records.append(
            TraceRecord(record.time_unix_nano, seq, prefix, metadata, body, record.event_name)
        )
        return
    pending = process.chunked.get(group)
    if pending is None:
        if attributes.get(names.TORCH_OTEL_RENDER_ERROR):
            report.lossy_records += 1
        pending = TraceRecord(
            record.time_unix_nano, seq, prefix, metadata, Chunks(count), record.event_name, group
        )
        process.chunked[group] = pending
        process.records.append(pending)
    chunks = pending.body
    assert isinstance(chunks, Chunks) and isinstance(body, str)
    chunks.count = max(chunks.count, count)
    if index in chunks.pieces:
        report.duplicate_chunks += 1
    else:
        chunks.pieces[index] = body


def _process_for(
    processes: dict[tuple[tuple[str, str], ...], Process], resource: dict[str, Any], prefix: str
) -> Process:
    """The process a record belongs to (created on first sight), keyed by its identity."""
    pid = resource.get(names.PROCESS_PID)
    if not _is_int(pid):
        pid = _prefix_pid(prefix)
    identity = tuple(
        (name, json.dumps(resource[name], default=str))
        for name in IDENTITY_ATTRIBUTES
        if name in resource
    )
    key = (("pid", str(pid)), *identity)
    process = processes.get(key)
    if process is None:
        rank = resource.get(names.TORCH_DISTRIBUTED_RANK)
        process = Process(pid, rank if _is_int(rank) else None, key)
        processes[key] = process
    return process


def _prefix_pid(prefix: str) -> int | None:
    """The pid in a glog prefix (``V1126 10:32:56.084000 17294 file.py:303]``)."""
    parts = prefix.split(" ")
    if len(parts) >= 4 and parts[2].isdigit():
        return int(parts[2])
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def run_to_tlparse(inputs: list[str], output_dir: str, stdout: TextIO, stderr: TextIO) -> int:
    """``torch-otel to-tlparse``: rebuild, one ``PATH<TAB>N records`` line per file on stdout.

    Problems go to stderr, one line each, ``FILE:LINE`` first for bad lines (as
    compilers do, so editors and terminals can jump to them). Exit 0 unless no
    input could be read (:class:`ConfigError`, which the CLI turns into exit 2).
    """
    report = rebuild([Path(name) for name in inputs], Path(output_dir), progress=stderr)
    for problem in report.unreadable:
        print(f"torch-otel: warning: {problem}", file=stderr)
    for bad in report.bad_lines:
        print(f"{bad.path}:{bad.line_number}: bad line skipped: {bad.error}", file=stderr)
    for item in report.incomplete:
        print(
            f"torch-otel: warning: {item.path}: {item.event_name} payload incomplete "
            f"(chunk group {item.group}: missing {len(item.missing)} of {item.count} chunks, "
            f"indices {', '.join(map(str, item.missing))}); written with the chunks present",
            file=stderr,
        )
    if report.malformed_records:
        print(
            f"torch-otel: warning: {report.malformed_records} torch.trace records without "
            f"{PREFIX_ATTRIBUTE}/{METADATA_ATTRIBUTE} skipped",
            file=stderr,
        )
    if report.unresolved:
        print(
            f"torch-otel: warning: {len(report.unresolved)} de-duplicated payloads refer to "
            "a body that is in none of the inputs (written empty), e.g. "
            f"{report.unresolved[0][0]}: sha256 {report.unresolved[0][1]}",
            file=stderr,
        )
    if report.lossy_records:
        print(
            f"torch-otel: warning: {report.lossy_records} payloads were not valid UTF-8 and were "
            "escaped on export; they differ from torch's file",
            file=stderr,
        )
    if not report.files:
        print(
            "torch-otel: warning: no torch trace records found (was the job run with --trace?)",
            file=stderr,
        )
    for written in report.files:
        print(f"{written.path}\t{written.records} records", file=stdout)
    return 0
