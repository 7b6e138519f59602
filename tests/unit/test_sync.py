"""TorchLoggingSync keeps one handler on exactly the loggers torch prints through.

In process, against torch's real registry and ``_init_logs`` (re-run by every
``set_logs()``), with a plain handler standing in for the bridge's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import torch._logging

from torch_otel.capture import _torch
from torch_otel.capture.components import ComponentResolver
from torch_otel.capture.sync import TorchLoggingSync, is_export_stack_logger, validate_torch_logs
from torch_otel.errors import ConfigError


class Recording(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def guards_enabled() -> Iterator[None]:
    torch._logging.set_logs(guards=True)
    yield
    torch._logging.set_logs()


def attached_count(handler: logging.Handler, names: list[str]) -> dict[str, int]:
    return {name: logging.getLogger(name).handlers.count(handler) for name in names}


def test_handler_on_every_registered_logger_once_across_reinits(guards_enabled: None) -> None:
    handler = Recording()
    sync = TorchLoggingSync(handler, ComponentResolver())
    sync.start()
    try:
        registered = [n for n in sync.resolver.registered_logger_names()]
        for _ in range(3):
            torch._logging.set_logs(guards=True)  # torch re-initialises its handlers
        counts = attached_count(handler, registered)
        assert set(counts.values()) == {1}
        assert sorted(sync.attached_logger_names) == sorted(registered)
        torch._logging.getArtifactLogger("torch._dynamo.guards", "guards").debug("hello %s", 1)
        assert handler.messages == ["hello 1"]
    finally:
        sync.stop()
    assert set(attached_count(handler, registered).values()) == {0}


def test_console_off_removes_torchs_stderr_handlers_and_stop_restores_them(
    guards_enabled: None,
) -> None:
    dynamo = logging.getLogger("torch._dynamo")

    def torch_stderr_handlers() -> int:
        return sum(_torch.is_torch_stderr_handler(h) for h in dynamo.handlers)

    assert torch_stderr_handlers() == 1
    sync = TorchLoggingSync(Recording(), ComponentResolver(), console=False)
    sync.start()
    try:
        assert torch_stderr_handlers() == 0
        torch._logging.set_logs(guards=True)
        assert torch_stderr_handlers() == 0  # also after torch re-creates them
    finally:
        sync.stop()
    assert torch_stderr_handlers() == 1


def test_init_logs_is_wrapped_once_for_many_syncs_and_restored() -> None:
    original = _torch.init_logs_function()
    first, second = Recording(), Recording()
    syncs = [TorchLoggingSync(h, ComponentResolver()) for h in (first, second)]
    for sync in syncs:
        sync.start()
    wrapped = _torch.init_logs_function()
    assert wrapped is not original
    assert wrapped.__torch_otel_original__ is original  # type: ignore[attr-defined]
    try:
        torch._logging.set_logs(guards=True)
        torch._logging.getArtifactLogger("torch._dynamo.guards", "guards").debug("both")
        assert first.messages == second.messages == ["both"]
    finally:
        for sync in syncs:
            sync.stop()
        torch._logging.set_logs()
    assert _torch.init_logs_function() is original


@pytest.mark.parametrize(
    ("name", "excluded"),
    [
        ("opentelemetry.sdk._logs", True),
        ("grpc._channel", True),
        ("urllib3.connectionpool", True),
        ("torch_otel", True),
        ("torch._dynamo", False),
        ("grpcio_like", False),
    ],
)
def test_export_stack_loggers_are_never_bridged(name: str, excluded: bool) -> None:
    assert is_export_stack_logger(name) is excluded


def test_torch_logs_is_validated_with_torchs_parser() -> None:
    validate_torch_logs("+dynamo,guards,recompiles")
    validate_torch_logs(None)
    with pytest.raises(ConfigError, match="not_a_log") as caught:
        validate_torch_logs("guards,not_a_log")
    assert caught.value.setting == "TORCH_LOGS"
