"""The Rotel fixture: a real collector between the exporters and the loopback receiver.

Pins what the multi-rank tests rely on: both OTLP receivers accept, records arrive
downstream unchanged (bodies, attributes, resource), stopping flushes what Rotel
still holds, and it re-batches across requests (so the receiver behind it needs a
larger gRPC limit than the 4 MiB a client may send).
"""

from __future__ import annotations

from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as HttpLogExporter,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from infra.otlp_receiver import OtlpReceiver
from infra.rotel import ROTEL_VERSION, Rotel, rotel_binary


def provider_to(exporter: object) -> LoggerProvider:
    provider = LoggerProvider(resource=Resource({"service.name": "rotel-test", "job": 7}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))  # type: ignore[arg-type]
    return provider


def test_rotel_is_the_pinned_package() -> None:
    from importlib.metadata import version

    assert version("rotel") == ROTEL_VERSION
    assert rotel_binary().is_file()


def test_records_pass_through_both_receivers_unchanged_and_stop_flushes() -> None:
    body = "guards:\n" + "é" * 1000
    with OtlpReceiver(grpc_max_receive_bytes=64 << 20) as receiver:
        rotel = Rotel(receiver.grpc_endpoint, batch_timeout_ms=60_000)  # held until stop
        with rotel:
            assert rotel.running
            grpc = provider_to(OTLPLogExporter(endpoint=rotel.grpc_endpoint, insecure=True))
            http = provider_to(HttpLogExporter(endpoint=f"{rotel.http_endpoint}/v1/logs"))
            for provider, transport in ((grpc, "grpc"), (http, "http")):
                for index in range(3):
                    provider.get_logger("torch._dynamo.guards.__guards").emit(
                        LogRecord(
                            body=body,
                            attributes={"torch.artifact": "guards", "n": index, "via": transport},
                        )
                    )
                provider.shutdown()
            assert receiver.record_count() == 0  # still batching
        assert not rotel.running
        records = receiver.log_records()
    assert sorted((r.attributes["via"], r.attributes["n"]) for r in records) == sorted(
        (via, n) for via in ("grpc", "http") for n in range(3)
    )
    assert {r.body for r in records} == {body}
    assert {r.scope_name for r in records} == {"torch._dynamo.guards.__guards"}
    assert all(
        r.resource["service.name"] == "rotel-test" and r.resource["job"] == 7 for r in records
    )
    # Six client requests became fewer downstream: Rotel re-batches.
    assert len(receiver.received("logs")) < 6
