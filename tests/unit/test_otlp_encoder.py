"""The fast OTLP encoder produces exactly what the SDK's encoder produces.

Both paths run on the same captured records; the bytes of each are parsed with
the official ``ExportLogsServiceRequest`` and compared record by record.
"""

from __future__ import annotations

import time

import pytest
import torch  # noqa: F401
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from torch._guards import CompileId

from torch_otel.capture.compile_events import parse_compile_id
from torch_otel.capture.components import ComponentResolver
from torch_otel.capture.records import CapturedEvent, CapturedException, CapturedRecord
from torch_otel.cli.otlp_json import flatten_logs
from torch_otel.config.resource import build_resource
from torch_otel.export.mapping import RecordMapper
from torch_otel.export.otlp_encoder import OtlpLogEncoder, any_value_bytes


def captured(**overrides) -> CapturedRecord:  # type: ignore[no-untyped-def]
    fields = {
        "logger_name": "torch._dynamo.guards.__guards",
        "levelno": 10,
        "created": time.time(),
        "message": "GUARDS:\n+- TYPE_MATCH: ___check_type_id(L['x'], 94)",
        "pathname": "/site-packages/torch/_dynamo/guards.py",
        "lineno": 4483,
        "func_name": "compile_check_fn",
        "thread_id": 140000,
        "thread_name": "MainThread",
        "compile_id": None,
        "attempt": None,
        "exception": None,
        "stack_info": None,
        "render_error": None,
        "rank": None,
        "metadata": None,
        "event": None,
    }
    fields.update(overrides)
    return CapturedRecord(**fields)


CASES = [
    captured(),
    captured(compile_id=CompileId(frame_id=0, frame_compile_id=1), attempt=2, rank=3),
    captured(
        logger_name="torch._inductor.graph.__output_code",
        levelno=20,
        message="é 漢字 🙂\n" * 50,
        compile_id=CompileId(frame_id=1, frame_compile_id=0, compiled_autograd_id=4),
        attempt=0,
    ),
    captured(levelno=30, message="bad \udcff surrogate", render_error="ValueError: x"),
    captured(
        levelno=40,
        exception=CapturedException("ValueError", "boom", "Traceback...\nValueError: boom\n"),
        stack_info="Stack (most recent call last):\n  ...",
    ),
    captured(levelno=50, message="x" * 5000),  # chunked (max_body_bytes below)
    captured(
        logger_name="torch.__trace",
        message="payload",
        metadata={
            "compilation_metrics": {"n": -7, "ratio": 0.25, "ok": True, "names": ["a", "b"]},
            "frame_id": 2,
            "frame_compile_id": 1,
            "attempt": 1,
            "rank": 0,
        },
    ),
    # torch-otel's own event (compile health): its component, its attributes, an event name
    captured(
        logger_name="torch_otel",
        levelno=30,
        message="compile [3/1] of f (train.py:7) still running after 301.0 s",
        pathname="train.py",
        lineno=7,
        func_name="f",
        compile_id=parse_compile_id("3/1"),
        rank=1,
        event=CapturedEvent(
            "torch.compile.slow",
            "dynamo",
            {"torch.compile.elapsed": 301.0, "torch.compile.phase": "inductor_compile"},
        ),
    ),
    captured(  # frame not known: no code location attributes
        logger_name="torch_otel",
        pathname="",
        lineno=0,
        func_name=None,
        event=CapturedEvent("torch.compile.slow.finished", "dynamo", {"x.y": 1}),
    ),
]


def decode(requests: list[bytes]) -> list:
    out = []
    for payload in requests:
        out.extend(flatten_logs(ExportLogsServiceRequest.FromString(payload)))
    return out


def normalized(record) -> tuple:  # type: ignore[no-untyped-def]
    attributes = dict(record.attributes)
    attributes.pop("torch.artifact.chunk.group", None)
    return (
        record.scope,
        record.body,
        record.severity_number,
        record.severity_text,
        record.time_unix_nano,
        tuple(sorted(attributes.items(), key=str)),
        record.event_name,
        tuple(sorted(record.resource.items(), key=str)),
    )


@pytest.fixture(scope="module")
def mapper() -> RecordMapper:
    return RecordMapper(ComponentResolver(), build_resource(), max_body_bytes=1024)


def test_wire_encoding_equals_the_sdk_encoding(mapper: RecordMapper) -> None:
    sdk = decode([encode_logs(mapper.map_batch(CASES)).SerializeToString()])
    encoder = OtlpLogEncoder(mapper, max_request_bytes=3 * 1024 * 1024)
    fast = decode([r.payload for r in encoder.encode(CASES, time.time_ns())])
    assert len(fast) == len(sdk) > len(CASES)  # chunking produced extra records
    assert sorted(map(normalized, fast), key=str) == sorted(map(normalized, sdk), key=str)
    slow = next(r for r in fast if r.event_name == "torch.compile.slow")
    assert slow.scope == "torch_otel"
    assert slow.attributes["torch.component"] == "dynamo"
    assert slow.attributes["torch.compile.trace_id"] == "3/1"
    assert slow.attributes["torch.compile.frame_id"] == 3
    assert (slow.attributes["code.function.name"], slow.attributes["code.line.number"]) == ("f", 7)
    assert slow.attributes["torch.compile.elapsed"] == 301.0
    finished = next(r for r in fast if r.event_name == "torch.compile.slow.finished")
    assert "code.file.path" not in finished.attributes


def test_requests_are_bounded_by_bytes(mapper: RecordMapper) -> None:
    encoder = OtlpLogEncoder(mapper, max_request_bytes=20_000)
    many = [captured(message=f"record {i} " + "y" * 900) for i in range(100)]
    requests = encoder.encode(many, time.time_ns())
    assert len(requests) > 3
    assert all(len(r.payload) <= 20_000 + 2048 for r in requests)
    assert sum(r.record_count for r in requests) == 100
    assert [r.body for r in decode([r.payload for r in requests])] == [m.message for m in many]


@pytest.mark.parametrize("value", [0, 1, -1, 2**62, -(2**63), 3.5, True, False, "s", ["a", 1]])
def test_any_value_matches_protobuf(value) -> None:  # type: ignore[no-untyped-def]
    from opentelemetry.exporter.otlp.proto.common._internal import _encode_value

    assert any_value_bytes(value) == _encode_value(value).SerializeToString()
