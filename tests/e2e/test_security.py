"""OTLP over TLS and mutual TLS, headers from OTEL_EXPORTER_OTLP_HEADERS, for gRPC and HTTP.

A wrong CA or a plaintext-only peer fails clearly and never falls back to
plaintext; header values never show up in errors, logs or reprs; plaintext to a
non-loopback host warns once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from helpers.bridges import bridged, emit
from infra.otlp_receiver import OtlpReceiver
from infra.tls_certs import TlsFiles, generate_tls_files

PROFILES = {"grpc": "otlp-grpc", "http": "otlp-http"}
TOKEN = "t0k3n-S3CR3T-value"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return generate_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(autouse=True)
def machine_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Machines (this one, CI) often set REQUESTS_CA_BUNDLE to the system bundle. The
    profile's CA file must still be the one used."""
    system_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if system_bundle.exists():
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(system_bundle))


def https_endpoint(receiver: OtlpReceiver, protocol: str) -> str:
    port = receiver.grpc_port if protocol == "grpc" else receiver.http_port
    return f"https://localhost:{port}"


def arrived(receiver: OtlpReceiver) -> Counter[str]:
    return Counter(r.body for r in receiver.log_records())


@pytest.mark.parametrize("protocol", sorted(PROFILES))
def test_tls_with_a_ca_file(monkeypatch: pytest.MonkeyPatch, tls: TlsFiles, protocol: str) -> None:
    with OtlpReceiver(**tls.receiver_kwargs()) as receiver:
        with bridged(
            monkeypatch,
            endpoint=https_endpoint(receiver, protocol),
            profile=PROFILES[protocol],
            env={"OTEL_EXPORTER_OTLP_CERTIFICATE": tls.ca_cert},
        ) as bridge:
            sent = emit(20, "tls")
            assert bridge.flush(20), bridge.last_error
        assert arrived(receiver) == Counter(sent)


@pytest.mark.parametrize("protocol", sorted(PROFILES))
def test_mutual_tls(monkeypatch: pytest.MonkeyPatch, tls: TlsFiles, protocol: str) -> None:
    with OtlpReceiver(**tls.receiver_kwargs(mutual=True)) as receiver:
        with bridged(
            monkeypatch,
            endpoint=https_endpoint(receiver, protocol),
            profile=PROFILES[protocol],
            env={
                "OTEL_EXPORTER_OTLP_CERTIFICATE": tls.ca_cert,
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": tls.client_cert,
                "OTEL_EXPORTER_OTLP_CLIENT_KEY": tls.client_key,
            },
        ) as bridge:
            sent = emit(20, "mtls")
            assert bridge.flush(20), bridge.last_error
        assert arrived(receiver) == Counter(sent)


@pytest.mark.parametrize("protocol", sorted(PROFILES))
def test_mutual_tls_without_a_client_certificate_fails(
    monkeypatch: pytest.MonkeyPatch, tls: TlsFiles, protocol: str
) -> None:
    with OtlpReceiver(**tls.receiver_kwargs(mutual=True)) as receiver:
        with bridged(
            monkeypatch,
            endpoint=https_endpoint(receiver, protocol),
            profile=PROFILES[protocol],
            env={"OTEL_EXPORTER_OTLP_CERTIFICATE": tls.ca_cert},
            stop_timeout_s=1,
        ) as bridge:
            emit(5, "no-client-cert")
            assert not bridge.flush(3)
            assert bridge.last_error
        assert receiver.log_records() == []
        assert bridge.counters().dropped == {"shutdown": 5}


@pytest.mark.parametrize("protocol", sorted(PROFILES))
@pytest.mark.parametrize("peer", ["wrong_ca", "plaintext_only"])
def test_tls_failure_never_falls_back_to_plaintext(
    monkeypatch: pytest.MonkeyPatch, tls: TlsFiles, protocol: str, peer: str
) -> None:
    receiver_kwargs = tls.receiver_kwargs() if peer == "wrong_ca" else {}
    ca = tls.wrong_ca if peer == "wrong_ca" else tls.ca_cert
    with OtlpReceiver(**receiver_kwargs) as receiver:
        with bridged(
            monkeypatch,
            endpoint=https_endpoint(receiver, protocol),
            profile=PROFILES[protocol],
            env={"OTEL_EXPORTER_OTLP_CERTIFICATE": ca},
            stop_timeout_s=1,
        ) as bridge:
            emit(5, "must-not-leak")
            assert not bridge.flush(3)
            error = (bridge.last_error or "").lower()
        assert receiver.log_records() == []  # nothing accepted, in plaintext or otherwise
        assert not [a for a in receiver.attempts if a.outcome == "accepted"]
        assert any(word in error for word in ("ssl", "certificate", "handshake", "tls", "connect"))
        assert bridge.counters().dropped == {"shutdown": 5}


@pytest.mark.parametrize("protocol", sorted(PROFILES))
def test_headers_from_the_environment_and_secrecy(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], protocol: str
) -> None:
    with OtlpReceiver() as receiver:
        receiver.require_bearer_token(TOKEN)
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        with bridged(
            monkeypatch,
            endpoint=endpoint,
            profile=PROFILES[protocol],
            env={"OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer {TOKEN},x-team=compilers"},
            debug=True,
        ) as bridge:
            sent = emit(10, "authorized")
            assert bridge.flush(20), bridge.last_error
            texts = [repr(bridge), repr(bridge.profile), bridge.profile.describe()]
        assert arrived(receiver) == Counter(sent)
        headers = receiver.received_headers[-1]
        assert headers["authorization"] == f"Bearer {TOKEN}"
        assert headers["x-team"] == "compilers"

        receiver.require_bearer_token("a-different-token")
        with bridged(
            monkeypatch,
            endpoint=endpoint,
            profile=PROFILES[protocol],
            env={"OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer {TOKEN}"},
            debug=True,
        ) as bridge:
            emit(3, "unauthorized")
            assert bridge.flush(10)
            assert bridge.counters().dropped == {"rejected": 3}
            texts += [repr(bridge), str(bridge.last_error)]
            texts += [repr(sink) for sink in bridge.pipeline.sinks]
    captured = capfd.readouterr()
    texts += [captured.out, captured.err]
    assert "authorization" in texts[2]  # header *names* are shown...
    for text in texts:
        assert TOKEN not in text  # ...values never


def test_plaintext_to_a_remote_host_warns_once(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    with bridged(
        monkeypatch, endpoint="http://collector.example.internal:4317", stop_timeout_s=0.5
    ):
        pass
    with bridged(monkeypatch, endpoint="http://127.0.0.1:4317", stop_timeout_s=0.5):
        pass
    with bridged(
        monkeypatch, endpoint="https://collector.example.internal:4317", stop_timeout_s=0.5
    ):
        pass
    warnings = [line for line in capfd.readouterr().err.splitlines() if "unencrypted" in line]
    assert len(warnings) == 1
    assert "collector.example.internal:4317" in warnings[0]
