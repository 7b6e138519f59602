"""Tests of the loopback OTLP receiver, driven by the official OTLP exporters.

These pin down that the fixture behaves like a real collector on the wire, so
that tests built on it (size limits, retries, outages, TLS, auth) check what
an exporter really does rather than what a mock assumes.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
    OTLPLogExporter as GrpcLogExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as HttpLogExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from infra.otlp_receiver import Fault, OtlpReceiver, receiver_fixture
from infra.tls_certs import TlsFiles, generate_tls_files

Transport = Literal["grpc", "http"]
TRANSPORTS: tuple[Transport, ...] = ("grpc", "http")

SUCCESS = LogRecordExportResult.SUCCESS
FAILURE = LogRecordExportResult.FAILURE
RESOURCE = Resource({"service.name": "receiver-test", "host.name": "node-1"})
MiB = 1024 * 1024

receiver = receiver_fixture()


def record(body: Any, **attributes: Any) -> ReadableLogRecord:
    return ReadableLogRecord(
        log_record=LogRecord(body=body, attributes=attributes),
        resource=RESOURCE,
        instrumentation_scope=InstrumentationScope("x"),
    )


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return generate_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def make_exporter() -> Iterator[Callable[..., LogRecordExporter]]:
    """Build an official log exporter for a receiver; all are shut down after the test.

    ``client``: ``"trusted"`` / ``"untrusted"`` client certificate for mTLS.
    ``ca``: CA file to trust (defaults to the test CA when the receiver is TLS).
    """
    made: list[LogRecordExporter] = []

    def make(
        transport: Transport,
        rcv: OtlpReceiver,
        *,
        timeout: float = 2.0,
        tls: TlsFiles | None = None,
        ca: str | None = None,
        client: Literal["trusted", "untrusted"] | None = None,
        headers: dict[str, str] | None = None,
        gzip_body: bool = False,
    ) -> LogRecordExporter:
        exporter: LogRecordExporter
        if transport == "grpc":
            credentials = None
            if tls is not None:
                credentials = tls.grpc_credentials(
                    ca=ca,
                    client_cert=client == "trusted",
                    untrusted_client_cert=client == "untrusted",
                )
            exporter = GrpcLogExporter(
                endpoint=rcv.grpc_endpoint,
                credentials=credentials,
                headers=headers,
                timeout=timeout,
            )
        else:
            cert = key = None
            if tls is not None and client == "trusted":
                cert, key = tls.client_cert, tls.client_key
            elif tls is not None and client == "untrusted":
                cert, key = tls.untrusted_client_cert, tls.untrusted_client_key
            exporter = HttpLogExporter(
                endpoint=rcv.http_url("logs"),
                certificate_file=(ca or tls.ca_cert) if tls is not None else None,
                client_certificate_file=cert,
                client_key_file=key,
                headers=headers,
                timeout=timeout,
                compression=Compression.Gzip if gzip_body else None,
            )
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown()


def post(
    url: str, body: bytes, content_type: str, extra_headers: dict[str, str] | None = None
) -> tuple[int, str, bytes]:
    """POST with urllib; returns (status, content type, body) for errors too."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": content_type, **(extra_headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


# --------------------------------------------------------------------------- plain delivery


def test_grpc_plaintext_delivers_records(
    receiver: OtlpReceiver, make_exporter: Callable[..., LogRecordExporter]
) -> None:
    exporter = make_exporter("grpc", receiver)
    traced = ReadableLogRecord(
        log_record=LogRecord(
            body="third",
            attributes={"n": 3, "ratio": 0.5, "ok": True, "tags": ("a", "b")},
            severity_text="WARN",
            severity_number=SeverityNumber.WARN,
            trace_id=0x0123456789ABCDEF0123456789ABCDEF,
            span_id=0x0123456789ABCDEF,
            event_name="torch.compile.event",
        ),
        resource=RESOURCE,
        instrumentation_scope=InstrumentationScope("x"),
    )
    result = exporter.export([record("first", n=1), record("second", n=2), traced])

    assert result is SUCCESS
    records = receiver.wait_for_logs(3, timeout=2)
    assert [r.body for r in records] == ["first", "second", "third"]
    assert [r.attributes["n"] for r in records] == [1, 2, 3]
    assert records[2].attributes == {"n": 3, "ratio": 0.5, "ok": True, "tags": ["a", "b"]}
    assert all(
        r.resource == {"service.name": "receiver-test", "host.name": "node-1"} for r in records
    )
    assert all(r.scope_name == "x" and r.transport == "grpc" for r in records)
    third = records[2]
    assert (third.severity_text, third.severity_number) == ("WARN", SeverityNumber.WARN.value)
    assert third.trace_id == "0123456789abcdef0123456789abcdef"
    assert third.span_id == "0123456789abcdef"
    assert third.event_name == "torch.compile.event"
    assert receiver.request_count == 1
    assert receiver.request_sizes == [receiver.logs_requests[0].ByteSize()]
    assert "OTel-OTLP-Exporter-Python" in receiver.received_headers[0]["user-agent"]


@pytest.mark.parametrize("gzip_body", [False, True], ids=["identity", "gzip"])
def test_http_protobuf_delivers_records(
    receiver: OtlpReceiver, make_exporter: Callable[..., LogRecordExporter], gzip_body: bool
) -> None:
    exporter = make_exporter("http", receiver, gzip_body=gzip_body)
    body = "compressible " * 200

    assert exporter.export([record(body, k="v"), record("two", k="w")]) is SUCCESS

    records = receiver.wait_for_logs(2, timeout=2)
    assert [(r.body, r.attributes) for r in records] == [(body, {"k": "v"}), ("two", {"k": "w"})]
    assert records[0].resource["service.name"] == "receiver-test"
    (request,) = receiver.received("logs")
    assert request.transport == "http"
    assert request.content_type == "application/x-protobuf"
    if gzip_body:
        assert request.content_encoding == "gzip"
        assert request.wire_bytes is not None and request.wire_bytes < request.size
    else:
        assert request.content_encoding is None
        assert request.wire_bytes == request.size


def test_http_json_is_decoded(receiver: OtlpReceiver) -> None:
    message = encode_logs([record("from json", answer=42), record("again", answer=43)])
    body = json_format.MessageToJson(message).encode()

    status, content_type, answer = post(receiver.http_url("logs"), body, "application/json")

    assert status == 200
    assert content_type == "application/json"
    json_format.Parse(answer, logs_service_pb2.ExportLogsServiceResponse())
    records = receiver.wait_for_logs(2, timeout=2)
    assert [(r.body, r.attributes["answer"]) for r in records] == [("from json", 42), ("again", 43)]
    assert receiver.received()[0].content_type == "application/json"
    assert receiver.logs_requests == [message]


def test_http_json_with_otlp_hex_ids_and_gzip(receiver: OtlpReceiver) -> None:
    """OTLP/JSON (hex ids, as OTLP JSON exporters write them), gzip-compressed."""
    payload = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "x"},
                        "logRecords": [
                            {
                                "body": {"stringValue": "hex ids"},
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "severityNumber": 9,
                                "futureField": "receivers must ignore unknown fields",
                            }
                        ],
                    }
                ],
            }
        ]
    }
    body = gzip.compress(json.dumps(payload).encode())

    status, _, _ = post(
        receiver.http_url("logs"), body, "application/json", {"Content-Encoding": "gzip"}
    )

    assert status == 200
    (rec,) = receiver.wait_for_logs(1, timeout=2)
    assert rec.body == "hex ids"
    assert rec.trace_id == "5b8efff798038103d269b633813fc60c"
    assert rec.span_id == "eee19b7ec3c1b174"
    assert rec.severity_number == 9
    assert rec.resource == {"service.name": "j"}


def test_http_rejects_bad_requests(receiver: OtlpReceiver) -> None:
    url = receiver.http_url("logs")
    status, content_type, body = post(url, b"{not json", "application/json")
    assert status == 400
    assert content_type == "application/json"
    assert "cannot decode" in json_format.Parse(body, status_pb2.Status()).message
    assert post(url, b"\x00", "text/plain")[0] == 415
    assert post(receiver.http_endpoint + "/v1/profiles", b"", "application/x-protobuf")[0] == 404
    assert receiver.request_count == 0
    assert [a.outcome for a in receiver.attempts] == [
        "bad_request",
        "unsupported_media_type",
        "not_found",
    ]


def test_traces_and_metrics_are_stored(receiver: OtlpReceiver) -> None:
    span_exporter = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, timeout=2)
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    with tracer_provider.get_tracer("x").start_as_current_span("outer", attributes={"a": 1}):
        pass
    tracer_provider.shutdown()

    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter_provider.get_meter("x").create_counter("compiles").add(5, {"backend": "inductor"})
    metrics_data = reader.get_metrics_data()
    assert metrics_data is not None
    metric_exporter = HttpMetricExporter(endpoint=receiver.http_url("metrics"), timeout=2)
    assert metric_exporter.export(metrics_data) is MetricExportResult.SUCCESS
    metric_exporter.shutdown()
    meter_provider.shutdown()

    (span,) = receiver.wait_for_spans(1, timeout=2)
    assert (span.name, span.attributes, span.transport) == ("outer", {"a": 1}, "grpc")
    assert span.resource["service.name"] == "receiver-test"
    (metric,) = receiver.metrics()
    assert (metric.name, metric.kind, metric.transport) == ("compiles", "sum", "http")
    assert [(p.attributes, p.value) for p in metric.points] == [({"backend": "inductor"}, 5)]
    assert {r.signal for r in receiver.received()} == {"traces", "metrics"}


def test_wait_for_logs_times_out_with_a_useful_message(receiver: OtlpReceiver) -> None:
    receiver.fail_next(1, Fault.INVALID_ARGUMENT)
    post(receiver.http_url("logs"), b"", "application/x-protobuf")
    with pytest.raises(TimeoutError, match=r"1 log record.*injected:INVALID_ARGUMENT"):
        receiver.wait_for_logs(1, timeout=0.1)


# --------------------------------------------------------------------------- size limits


def test_grpc_enforces_collector_default_4mib_limit(
    receiver: OtlpReceiver, make_exporter: Callable[..., LogRecordExporter]
) -> None:
    exporter = make_exporter("grpc", receiver, timeout=1)

    assert exporter.export([record("x" * (5 * MiB))]) is FAILURE
    assert receiver.request_count == 0

    assert exporter.export([record("y" * (3 * MiB))]) is SUCCESS
    (rec,) = receiver.wait_for_logs(1, timeout=2)
    assert rec.body == "y" * (3 * MiB)
    assert 3 * MiB < receiver.request_sizes[0] < 4 * MiB


def test_http_answers_413_over_max_body(
    receiver: OtlpReceiver, make_exporter: Callable[..., LogRecordExporter]
) -> None:
    exporter = make_exporter("http", receiver)

    assert exporter.export([record("x" * (5 * MiB))]) is FAILURE
    assert receiver.request_count == 0
    assert [a.outcome for a in receiver.attempts] == ["too_large"]

    assert exporter.export([record("y" * (3 * MiB))]) is SUCCESS
    assert receiver.wait_for_logs(1, timeout=2)[0].body == "y" * (3 * MiB)


# --------------------------------------------------------------------------- injected faults


def test_fail_next_is_retried_by_grpc_exporter_with_its_own_backoff(
    receiver: OtlpReceiver, make_exporter: Callable[..., LogRecordExporter]
) -> None:
    receiver.fail_next(2)  # UNAVAILABLE, no RetryInfo: exporter backs off ~1 s, then ~2 s
    exporter = make_exporter("grpc", receiver, timeout=8)

    started = time.monotonic()
    assert exporter.export([record("eventually")]) is SUCCESS
    elapsed = time.monotonic() - started

    assert 2.0 < elapsed < 6.0
    assert [r.body for r in receiver.log_records()] == ["eventually"]
    assert receiver.request_count == 1
    assert [a.outcome for a in receiver.attempts] == [
        "injected:UNAVAILABLE",
        "injected:UNAVAILABLE",
        "accepted",
    ]


def test_fail_next_with_retry_after_is_fast_over_http(
    receiver: OtlpReceiver, make_exporter: Callable[..., LogRecordExporter]
) -> None:
    receiver.fail_next(2, "unavailable", retry_after=0.05)
    exporter = make_exporter("http", receiver)

    started = time.monotonic()
    assert exporter.export([record("eventually")]) is SUCCESS

    assert time.monotonic() - started < 1.0
    assert [r.body for r in receiver.log_records()] == ["eventually"]
    assert [a.outcome for a in receiver.attempts][-3:] == [
        "injected:UNAVAILABLE",
        "injected:UNAVAILABLE",
        "accepted",
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_non_retryable_fault_is_not_retried(
    receiver: OtlpReceiver, make_exporter: Callable[..., LogRecordExporter], transport: Transport
) -> None:
    receiver.fail_next(1, Fault.INVALID_ARGUMENT)
    exporter = make_exporter(transport, receiver)

    assert exporter.export([record("rejected")]) is FAILURE
    assert [a.outcome for a in receiver.attempts] == ["injected:INVALID_ARGUMENT"]
    assert receiver.request_count == 0

    assert exporter.export([record("accepted")]) is SUCCESS
    assert [r.body for r in receiver.log_records()] == ["accepted"]


def test_fail_next_can_target_one_signal(receiver: OtlpReceiver) -> None:
    receiver.fail_next(1, Fault.INVALID_ARGUMENT, signal="traces")
    assert post(receiver.http_url("logs"), b"", "application/x-protobuf")[0] == 200
    assert post(receiver.http_url("traces"), b"", "application/x-protobuf")[0] == 400
    assert post(receiver.http_url("traces"), b"", "application/x-protobuf")[0] == 200


# --------------------------------------------------------------------------- outages


def test_stop_and_restart_on_the_same_ports(
    receiver: OtlpReceiver, make_exporter: Callable[..., LogRecordExporter]
) -> None:
    # The gRPC exporter needs one ~1 s backoff to reconnect after the restart;
    # the HTTP one retries a dead pooled connection at once, so 1 s is plenty.
    grpc_exporter = make_exporter("grpc", receiver, timeout=5)
    http_exporter = make_exporter("http", receiver, timeout=1)
    assert grpc_exporter.export([record("before-grpc")]) is SUCCESS
    assert http_exporter.export([record("before-http")]) is SUCCESS
    ports = (receiver.grpc_port, receiver.http_port)

    receiver.stop()
    assert not receiver.running
    down_grpc = make_exporter("grpc", receiver, timeout=0.5)
    assert down_grpc.export([record("lost")]) is FAILURE
    # Same exporter as before: its keep-alive connection must not survive stop().
    assert http_exporter.export([record("lost")]) is FAILURE

    receiver.restart()
    assert (receiver.grpc_port, receiver.http_port) == ports
    assert grpc_exporter.export([record("after-grpc")]) is SUCCESS
    assert http_exporter.export([record("after-http")]) is SUCCESS

    assert [r.body for r in receiver.log_records()] == [
        "before-grpc",
        "before-http",
        "after-grpc",
        "after-http",
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stall_is_a_black_hole(
    receiver: OtlpReceiver, make_exporter: Callable[..., LogRecordExporter], transport: Transport
) -> None:
    exporter = make_exporter(transport, receiver, timeout=1)
    receiver.stall()

    started = time.monotonic()
    result = exporter.export([record("swallowed")])
    elapsed = time.monotonic() - started

    assert result is FAILURE
    assert 0.9 < elapsed < 5.0
    assert receiver.request_count == 0
    assert receiver.wait_for_attempts(1, "stalled", timeout=1)

    receiver.unstall()
    assert exporter.export([record("served")]) is SUCCESS
    assert [r.body for r in receiver.log_records()] == ["served"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stop_releases_stalled_requests_promptly(
    receiver: OtlpReceiver, make_exporter: Callable[..., LogRecordExporter], transport: Transport
) -> None:
    exporter = make_exporter(transport, receiver, timeout=30)
    receiver.stall()
    results: list[LogRecordExportResult] = []
    worker = threading.Thread(target=lambda: results.append(exporter.export([record("held")])))
    worker.start()
    receiver.wait_for_attempts(1, "stalled", timeout=5)

    started = time.monotonic()
    receiver.stop()
    assert time.monotonic() - started < 2.0

    exporter.shutdown()  # aborts the exporter's retry backoff
    worker.join(5)
    assert not worker.is_alive()
    assert results == [FAILURE]
    assert receiver.request_count == 0
    leftovers = [t.name for t in threading.enumerate() if t.name.startswith("otlp-receiver")]
    assert leftovers == []


# --------------------------------------------------------------------------- TLS


@pytest.fixture(autouse=True)
def _no_ca_bundle_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep ``requests`` from ignoring the HTTP exporter's ``certificate_file``.

    ``requests`` lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` win over
    ``session.verify`` (which is where the exporter puts ``certificate_file``),
    and some machines (this one, CI) set them to the system bundle. With them
    set, every HTTPS export to the test CA fails verification.
    """
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tls_with_the_test_ca(
    tls_files: TlsFiles, make_exporter: Callable[..., LogRecordExporter], transport: Transport
) -> None:
    with OtlpReceiver(**tls_files.receiver_kwargs()) as rcv:
        assert rcv.grpc_endpoint.startswith("https://localhost:")
        assert rcv.http_endpoint.startswith("https://localhost:")
        assert make_exporter(transport, rcv, tls=tls_files).export([record("tls")]) is SUCCESS
        wrong = make_exporter(transport, rcv, tls=tls_files, ca=tls_files.wrong_ca, timeout=1)
        assert wrong.export([record("untrusted server")]) is FAILURE
        assert [r.body for r in rcv.log_records()] == ["tls"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_mutual_tls_requires_a_trusted_client_cert(
    tls_files: TlsFiles, make_exporter: Callable[..., LogRecordExporter], transport: Transport
) -> None:
    with OtlpReceiver(**tls_files.receiver_kwargs(mutual=True)) as rcv:
        with_cert = make_exporter(transport, rcv, tls=tls_files, client="trusted")
        assert with_cert.export([record("mtls")]) is SUCCESS

        no_cert = make_exporter(transport, rcv, tls=tls_files, timeout=1)
        assert no_cert.export([record("no client cert")]) is FAILURE
        other_ca = make_exporter(transport, rcv, tls=tls_files, client="untrusted", timeout=1)
        assert other_ca.export([record("client cert from another CA")]) is FAILURE

        assert [r.body for r in rcv.log_records()] == ["mtls"]
        if transport == "http":
            assert any(a.outcome == "tls_handshake_failed" for a in rcv.attempts)


def test_tls_files_are_pem(tls_files: TlsFiles) -> None:
    for path in (tls_files.ca_cert, tls_files.server_cert, tls_files.client_cert):
        assert Path(path).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert Path(tls_files.server_key).read_text().startswith("-----BEGIN PRIVATE KEY-----")


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bearer_token_is_required_and_recorded(
    receiver: OtlpReceiver, make_exporter: Callable[..., LogRecordExporter], transport: Transport
) -> None:
    receiver.require_bearer_token("t0k3n")

    started = time.monotonic()
    assert make_exporter(transport, receiver).export([record("anonymous")]) is FAILURE
    wrong = make_exporter(transport, receiver, headers={"authorization": "Bearer nope"})
    assert wrong.export([record("wrong token")]) is FAILURE
    assert time.monotonic() - started < 1.0  # UNAUTHENTICATED / 401 are not retried

    good = make_exporter(transport, receiver, headers={"authorization": "Bearer t0k3n"})
    assert good.export([record("authorized")]) is SUCCESS

    assert [r.body for r in receiver.log_records()] == ["authorized"]
    assert receiver.received_headers[0]["authorization"] == "Bearer t0k3n"
    assert [a.outcome for a in receiver.attempts] == [
        "unauthenticated",
        "unauthenticated",
        "accepted",
    ]
