"""Bad records are exported with a marker (or counted), never raise into torch's code.
And the exporter stack's own log records never re-enter the bridge."""

from __future__ import annotations

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

from helpers.bridges import bridged, guards_log


class RaisesInStr:
    """Like a torch LazyString whose state went bad: rendering it raises."""

    def __str__(self) -> str:
        raise RuntimeError("lazy value is gone")

    __repr__ = __str__


def exported(memory: InMemoryLogRecordExporter) -> list:
    return [r.log_record for r in memory.get_finished_logs()]


@pytest.fixture
def memory_bridge(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    memory = InMemoryLogRecordExporter()
    with bridged(monkeypatch, profile="none", exporters=(memory,)) as bridge:
        yield bridge, memory


def test_argument_raising_in_str_is_exported_with_a_marker(
    memory_bridge, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge, memory = memory_bridge
    guards_log().debug("guard on %s failed: %s", "x", RaisesInStr())  # must not raise
    assert bridge.flush(5)
    (record,) = exported(memory)
    assert record.body.startswith("guard on x failed: <torch-otel: unrenderable RaisesInStr")
    assert "lazy value is gone" in record.attributes["torch_otel.render_error"]
    assert "Logging error" not in capsys.readouterr().err


def test_format_mismatch_is_exported_with_its_arguments(memory_bridge) -> None:
    bridge, memory = memory_bridge
    guards_log().debug("count %d", "not a number")
    assert bridge.flush(5)
    (record,) = exported(memory)
    assert "count %d" in record.body and "not a number" in record.body
    assert "TypeError" in record.attributes["torch_otel.render_error"]


def test_surrogates_and_non_utf8_are_escaped(memory_bridge) -> None:
    bridge, memory = memory_bridge
    guards_log().debug("path \udcff\udcfe in source")
    guards_log().debug("%s", b"\xff\xfe raw bytes")
    assert bridge.flush(5)
    surrogate, raw = exported(memory)
    assert surrogate.body == "path \\udcff\\udcfe in source"
    assert "invalid UTF-8" in surrogate.attributes["torch_otel.render_error"]
    assert raw.body == "b'\\xff\\xfe raw bytes'"
    assert bridge.counters().records_dropped == 0


def test_non_string_message_and_odd_extras(memory_bridge) -> None:
    bridge, memory = memory_bridge
    guards_log().debug({"guard": "TYPE_MATCH", "ids": [1, 2]})
    guards_log().debug(None)
    guards_log().debug("with extras", extra={"weird": object(), "payload": b"\x00"})
    assert bridge.flush(5)
    bodies = [r.body for r in exported(memory)]
    assert bodies == ["{'guard': 'TYPE_MATCH', 'ids': [1, 2]}", "None", "with extras"]


def test_exc_info_without_traceback(memory_bridge) -> None:
    bridge, memory = memory_bridge
    guards_log().debug("failed", exc_info=(ValueError, ValueError("boom"), None))
    try:
        raise KeyError("missing")
    except KeyError:
        guards_log().debug("with traceback", exc_info=True)
    guards_log().debug("exc_info true, no exception", exc_info=True)
    assert bridge.flush(5)
    no_tb, with_tb, none = exported(memory)
    assert no_tb.attributes["exception.type"] == "ValueError"
    assert no_tb.attributes["exception.message"] == "boom"
    assert no_tb.attributes["exception.stacktrace"] == "ValueError: boom\n"
    assert with_tb.attributes["exception.type"] == "KeyError"
    assert "Traceback (most recent call last)" in with_tb.attributes["exception.stacktrace"]
    assert "test_bad_records.py" in with_tb.attributes["exception.stacktrace"]
    assert "exception.type" not in none.attributes


def test_exception_whose_str_raises(memory_bridge) -> None:
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    bridge, memory = memory_bridge
    guards_log().debug("weird", exc_info=(Weird, Weird(), None))
    assert bridge.flush(5)
    (record,) = exported(memory)
    assert record.attributes["exception.type"].endswith("Weird")
    assert "unrenderable" in record.attributes["exception.message"]


def test_stack_info_is_kept(memory_bridge) -> None:
    bridge, memory = memory_bridge
    guards_log().debug("where", stack_info=True)
    assert bridge.flush(5)
    (record,) = exported(memory)
    assert record.attributes["code.stacktrace"].startswith("Stack (most recent call last)")


def test_records_of_the_export_thread_never_re_enter(monkeypatch: pytest.MonkeyPatch) -> None:
    """A torch record logged *on the export thread* (e.g. by an exporter that calls into
    torch) is not bridged again."""

    class LoggingExporter(InMemoryLogRecordExporter):
        def export(self, batch):  # type: ignore[no-untyped-def]
            guards_log().debug("logged from inside the exporter")
            return super().export(batch)

    memory = LoggingExporter()
    with bridged(monkeypatch, profile="none", exporters=(memory,)) as bridge:
        guards_log().debug("real record")
        assert bridge.flush(5)
        assert bridge.flush(5)
        bodies = [r.log_record.body for r in memory.get_finished_logs()]
    assert bodies == ["real record"]
