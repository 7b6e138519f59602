"""The spill directory's format and queue: frames survive, torn tails and foreign files are
named and skipped, a segment is sent by one process only, the disk bound holds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from torch_otel.export.outcome import DELIVERED, ExportOutcome, ExportResult
from torch_otel.export.sink import EncodedLogsRequest
from torch_otel.export.spill import FORMAT_VERSION, SEGMENT_MAGIC, claim_segment, segment_paths
from torch_otel.export.spill_queue import SpillQueue
from torch_otel.stats import BridgeStats


class RecordingSink:
    representation = "otlp"

    def __init__(self, *answers: ExportResult) -> None:
        self.answers = list(answers)
        self.payloads: list[bytes] = []
        self.last_error: str | None = None

    def export(self, request: EncodedLogsRequest) -> ExportResult:
        answer = self.answers.pop(0) if self.answers else DELIVERED
        if answer.delivered:
            self.payloads.append(request.payload)
        return answer

    def shutdown(self) -> None: ...

    def force_flush(self, timeout_s: float) -> None: ...


def request(index: int, size: int = 100) -> EncodedLogsRequest:
    return EncodedLogsRequest(f"request-{index:05d}-".encode() + b"x" * size, 3)


def queue(directory: Path, max_bytes: int = 1 << 30) -> tuple[SpillQueue, BridgeStats]:
    stats = BridgeStats()
    spill = SpillQueue(directory, max_bytes, stats)
    assert spill.open()
    return spill, stats


def always(*_: Any) -> bool:
    return True


def test_requests_come_back_in_order_once(tmp_path: Path) -> None:
    spill, stats = queue(tmp_path)
    sent = [request(i) for i in range(50)]
    for item in sent:
        assert spill.append(item)
    sink = RecordingSink()
    assert spill.send([sink], always) is ExportOutcome.SUCCESS
    assert sink.payloads == [item.payload for item in sent]
    assert not spill.has_pending()
    snapshot = stats.snapshot()
    assert (snapshot.records_spilled, snapshot.records_exported) == (150, 150)
    spill.close()
    assert segment_paths(tmp_path) == ([], [])  # delivered segments are removed


def test_a_retryable_failure_keeps_the_frame_and_its_successors(tmp_path: Path) -> None:
    spill, _stats = queue(tmp_path)
    for index in range(3):
        spill.append(request(index))
    sink = RecordingSink(DELIVERED, ExportResult(ExportOutcome.RETRYABLE))
    assert spill.send([sink], always) is ExportOutcome.RETRYABLE
    assert spill.pending_records() == 6
    assert spill.send([sink], always) is ExportOutcome.SUCCESS
    assert [p[:13] for p in sink.payloads] == [b"request-00000", b"request-00001", b"request-00002"]


def test_left_on_disk_is_sent_by_the_next_process(tmp_path: Path) -> None:
    first, _ = queue(tmp_path)
    for index in range(4):
        first.append(request(index))
    first.close()  # the process ends with its records on disk
    second, stats = queue(tmp_path)
    second.claim_now()
    sink = RecordingSink()
    second.send([sink], always)
    assert len(sink.payloads) == 4 and stats.snapshot().records_exported == 12
    second.close()
    assert segment_paths(tmp_path)[0] == []


def test_a_held_segment_is_not_sent_twice(tmp_path: Path) -> None:
    writer, _ = queue(tmp_path)
    writer.append(request(1))
    (path,) = segment_paths(tmp_path)[0]
    assert claim_segment(path) is None  # its writer holds it
    other, _ = queue(tmp_path)
    other.claim_now()
    sink = RecordingSink()
    other.send([sink], always)
    assert sink.payloads == []


def test_acknowledged_frames_are_not_resent_after_a_crash(tmp_path: Path) -> None:
    spill, _ = queue(tmp_path)
    for index in range(4):
        spill.append(request(index))
    sink = RecordingSink(DELIVERED, DELIVERED, ExportResult(ExportOutcome.RETRYABLE))
    spill.send([sink], always)
    for segment in spill._segments:
        segment.close()  # kill -9: the locks go, the files and the ack stay
    later, _ = queue(tmp_path)
    later.claim_now()
    resent = RecordingSink()
    later.send([resent], always)
    assert [p[:13] for p in resent.payloads] == [b"request-00002", b"request-00003"]


def test_a_torn_tail_is_counted_and_skipped(tmp_path: Path) -> None:
    spill, _ = queue(tmp_path)
    for index in range(3):
        spill.append(request(index))
    (path,) = segment_paths(tmp_path)[0]
    for segment in spill._segments:
        segment.close()
    os.truncate(path, path.stat().st_size - 40)  # the last frame, cut mid-write
    later, stats = queue(tmp_path)
    later.claim_now()
    sink = RecordingSink()
    assert later.send([sink], always) is ExportOutcome.SUCCESS
    assert len(sink.payloads) == 2
    assert stats.snapshot().spill_torn == 1


def test_corrupt_frame_is_detected_by_its_checksum(tmp_path: Path) -> None:
    spill, _ = queue(tmp_path)
    spill.append(request(0))
    spill.append(request(1))
    (path,) = segment_paths(tmp_path)[0]
    for segment in spill._segments:
        segment.close()
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # flip a byte of the last payload
    path.write_bytes(bytes(data))
    later, stats = queue(tmp_path)
    later.claim_now()
    sink = RecordingSink()
    later.send([sink], always)
    assert len(sink.payloads) == 1 and stats.snapshot().spill_torn == 1


def test_newer_format_and_garbage_are_left_alone(tmp_path: Path) -> None:
    newer = tmp_path / "seg-00000000000000000001-host-1-000001.tospill"
    newer.write_bytes(SEGMENT_MAGIC + bytes([FORMAT_VERSION + 1]) + b"future frames")
    (tmp_path / "notes.txt").write_text("not ours")
    (tmp_path / "seg-00000000000000000002-host-1-000001.tospill").write_bytes(b"garbage")
    spill, _ = queue(tmp_path)
    spill.append(request(7))
    spill.claim_now()
    sink = RecordingSink()
    assert spill.send([sink], always) is ExportOutcome.SUCCESS
    assert len(sink.payloads) == 1
    assert newer.read_bytes().endswith(b"future frames")  # untouched
    assert (tmp_path / "notes.txt").exists()


def test_the_disk_bound_holds(tmp_path: Path) -> None:
    spill, stats = queue(tmp_path, max_bytes=1024 * 1024)
    written = sum(spill.append(request(i, size=100_000)) for i in range(20))
    assert written < 20 and spill.full
    assert stats.snapshot().records_spilled == 3 * written
    assert sum(p.stat().st_size for p in segment_paths(tmp_path)[0]) <= 1024 * 1024


def test_an_unusable_directory_is_said_once_and_left(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    spill = SpillQueue(blocker / "spill", 1 << 20, BridgeStats())
    assert spill.open() is False
    assert spill.disabled is not None
    assert spill.append(request(1)) is False


@pytest.mark.parametrize("count", [1, 2])
def test_several_sinks_each_get_every_frame_once(tmp_path: Path, count: int) -> None:
    spill, _ = queue(tmp_path)
    spill.append(request(1))
    spill.append(request(2))
    first = RecordingSink()
    flaky = RecordingSink(DELIVERED, ExportResult(ExportOutcome.RETRYABLE))
    sinks = [first, flaky][:count]
    spill.send(sinks, always)
    spill.send(sinks, always)
    assert len(first.payloads) == 2
    if count == 2:
        assert len(flaky.payloads) == 2
