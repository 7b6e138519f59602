"""The bridge follows torch's registry as it grows: modules named in set_logs(modules=...)
or TORCH_LOGS="+a.module", and loggers registered after the bridge was installed."""

from __future__ import annotations

import logging

import pytest
import torch._logging
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

from helpers.bridges import bridged


def exported(memory: InMemoryLogRecordExporter) -> list:
    return [r.log_record for r in memory.get_finished_logs()]


def test_module_enabled_through_set_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch._logging import _internal

    memory = InMemoryLogRecordExporter()
    with bridged(monkeypatch, profile="none", exporters=(memory,)) as bridge:
        try:
            torch._logging.set_logs(modules={"json": logging.DEBUG})
            logging.getLogger("json").debug("from the json module's logger")
            logging.getLogger("json.decoder").info("and a child of it")
            assert bridge.flush(5)
        finally:  # torch's registry only grows; leave it as other tests expect it
            for name in list(_internal.log_registry.log_alias_to_log_qnames):
                if name == "json" or name.startswith("json."):
                    del _internal.log_registry.log_alias_to_log_qnames[name]
            _internal.log_registry.child_log_qnames.difference_update(
                {q for q in _internal.log_registry.child_log_qnames if q.startswith("json")}
            )
    records = exported(memory)
    assert [r.body for r in records] == ["from the json module's logger", "and a child of it"]
    assert {r.attributes["torch.component"] for r in records} == {"json"}


def test_logger_registered_after_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch._logging import _internal

    memory = InMemoryLogRecordExporter()
    with bridged(monkeypatch, profile="none", exporters=(memory,)) as bridge:
        torch._logging._internal.register_log("late_component", "late.registered.logger")
        try:
            torch._logging.set_logs(modules={"late_component": logging.INFO})
            logging.getLogger("late.registered.logger.sub").info("registered late")
            assert bridge.flush(5)
        finally:
            _internal.log_registry.log_alias_to_log_qnames.pop("late_component", None)
    (record,) = exported(memory)
    assert record.body == "registered late"
    assert record.attributes["torch.component"] == "late_component"
