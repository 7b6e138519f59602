"""Console: torch's stderr output is unchanged by default; console=False removes torch's
own stderr handlers (export only); stopping the bridge gives them back."""

from __future__ import annotations

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

from helpers.bridges import bridged, guards_log


@pytest.mark.parametrize("console", [True, False])
def test_console_setting(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], console: bool
) -> None:
    memory = InMemoryLogRecordExporter()
    with bridged(monkeypatch, profile="none", exporters=(memory,), console=console) as bridge:
        # bridged() turned guards on through set_logs(): torch re-created its handlers,
        # and the bridge applied the console setting to the new ones.
        guards_log().debug("visible-on-stderr-only-with-console")
        assert bridge.flush(5)
    printed = capfd.readouterr().err
    assert [r.log_record.body for r in memory.get_finished_logs()] == [
        "visible-on-stderr-only-with-console"
    ]
    assert ("visible-on-stderr-only-with-console" in printed) is console
    assert "[__guards] visible-on-stderr-only-with-console" in printed or not console


def test_stopping_the_bridge_restores_torchs_console(
    capfd: pytest.CaptureFixture[str],
) -> None:
    import torch._logging

    from torch_otel.bridge import TorchOtelBridge
    from torch_otel.config.settings import BridgeSettings

    settings = BridgeSettings.resolve({"exporter": "none", "console": False}, {})
    bridge = TorchOtelBridge(settings, exporters=(InMemoryLogRecordExporter(),)).start()
    torch._logging.set_logs(guards=True)
    try:
        guards_log().debug("while-bridged")
        bridge.stop(5)
        guards_log().debug("after-stop")  # no set_logs() in between
    finally:
        torch._logging.set_logs()
    printed = capfd.readouterr().err
    assert "while-bridged" not in printed
    assert "after-stop" in printed


def test_application_provider_is_used_unless_a_profile_is_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bridge emits into the LoggerProvider the application set globally; an explicit
    profile still wins. (The opentelemetry-instrument test covers a real distro setup.)"""
    import opentelemetry._logs as logs_api
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    from torch_otel.bridge import TorchOtelBridge
    from torch_otel.config.settings import BridgeSettings

    app_memory = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(app_memory))
    monkeypatch.setattr(logs_api._internal, "_LOGGER_PROVIDER", provider)
    implicit = TorchOtelBridge(BridgeSettings.resolve({}, {}))
    explicit = TorchOtelBridge(BridgeSettings.resolve({"exporter": "console"}, {}))
    assert implicit.logger_provider is provider and implicit.profile is None
    assert explicit.logger_provider is None and explicit.profile is not None
