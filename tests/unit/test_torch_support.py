"""On a torch without some internal torch-otel relies on, it says so once, in one line,
and keeps working for the rest (here: torch's own internals removed for the test)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import torch
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from torch._logging import _internal

from helpers.bridges import bridged, guards_log
from torch_otel import application as bridge_module
from torch_otel.capture import _torch


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    handler = Collected()
    logger = logging.getLogger("torch_otel")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


@pytest.fixture
def fresh_probe() -> Iterator[None]:
    _torch.support.cache_clear()
    bridge_module.torch_is_usable.cache_clear()
    yield
    _torch.support.cache_clear()
    bridge_module.torch_is_usable.cache_clear()


def test_this_torch_is_fully_supported(fresh_probe: None) -> None:
    support = _torch.support()
    assert support.tested and support.can_bridge and support.missing == ()
    assert support.warning() is None


def test_untested_version_is_said_once_and_bridging_goes_on(
    fresh_probe: None, monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    monkeypatch.setattr(torch, "__version__", "2.99.0")
    memory = InMemoryLogRecordExporter()
    with bridged(monkeypatch, profile="none", exporters=(memory,)) as bridge:
        guards_log().debug("still bridged")
        assert bridge.flush(5)
    with bridged(monkeypatch, profile="none", exporters=(InMemoryLogRecordExporter(),)):
        pass  # a second bridge in the same process says nothing more
    assert warnings == ["torch-otel: torch 2.99.0 is untested (tested: 2.6 to 2.14)"]
    assert [r.log_record.body for r in memory.get_finished_logs()] == ["still bridged"]


def test_missing_internals_are_named_and_the_rest_works(
    fresh_probe: None, monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    monkeypatch.delattr(_internal, "_parse_log_settings")
    memory = InMemoryLogRecordExporter()
    with bridged(monkeypatch, profile="none", exporters=(memory,)) as bridge:
        guards_log().debug("degraded but bridged")
        assert bridge.flush(5)
    (warning,) = warnings
    assert "TORCH_LOGS validation (_parse_log_settings)" in warning
    assert warning.endswith("everything else works")
    assert [r.log_record.body for r in memory.get_finished_logs()] == ["degraded but bridged"]


def test_each_internal_degrades_instead_of_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(_internal, "_is_torch_handler")
    monkeypatch.delattr(_internal, "_parse_log_settings")
    monkeypatch.delattr(_internal, "_init_logs")
    assert _torch.is_torch_handler(logging.StreamHandler()) is False  # never remove a foreign one
    assert _torch.rejected_log_settings("not_a_log") is None  # torch itself will check
    assert _torch.init_logs_function() is None  # attach once, no re-sync


def test_without_the_registry_nothing_is_attached(
    fresh_probe: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_internal, "log_registry", object())
    support = _torch.support()
    assert not support.can_bridge
    assert "cannot be bridged" in (support.warning() or "")
