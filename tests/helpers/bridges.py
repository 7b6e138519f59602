"""In-process bridges for the reliability tests: a real TorchOtelBridge, real torch
loggers, real exporters, sending to a loopback receiver.

Records are logged through torch's own artifact loggers after
``torch._logging.set_logs(...)``, exactly the path a compile takes, without
paying for a compile where the behaviour under test is the export side.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
import torch._logging

from torch_otel.bridge import TorchOtelBridge
from torch_otel.config.settings import BridgeSettings

GUARDS_LOGGER = "torch._dynamo.guards"
OUTPUT_CODE_LOGGER = "torch._inductor.graph"


def guards_log() -> logging.Logger:
    return torch._logging.getArtifactLogger(GUARDS_LOGGER, "guards")


def output_code_log() -> logging.Logger:
    return torch._logging.getArtifactLogger(OUTPUT_CODE_LOGGER, "output_code")


def emit(count: int, prefix: str = "record", payload: str = "") -> list[str]:
    """Log ``count`` guards records; returns their bodies."""
    log = guards_log()
    bodies = []
    for index in range(count):
        log.debug("%s-%d%s", prefix, index, payload)
        bodies.append(f"{prefix}-{index}{payload}")
    return bodies


@contextmanager
def bridged(
    monkeypatch: pytest.MonkeyPatch,
    *,
    endpoint: str | None = None,
    profile: str = "otlp-grpc",
    timeout_ms: int = 2000,
    env: dict[str, str] | None = None,
    stop_timeout_s: float = 10.0,
    exporters: tuple[Any, ...] = (),
    **options: Any,
) -> Iterator[TorchOtelBridge]:
    """A started bridge (torch's console off) with guards and output_code enabled."""
    if endpoint is not None:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", str(timeout_ms))
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    settings = BridgeSettings.resolve({"exporter": profile, "console": False, **options}, {})
    bridge = TorchOtelBridge(settings, exporters=exporters).start()
    torch._logging.set_logs(guards=True, output_code=True)
    try:
        yield bridge
    finally:
        bridge.stop(stop_timeout_s)
        torch._logging.set_logs()
