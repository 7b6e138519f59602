"""Specs of the small pieces: component rule, severity, chunking, buffer bounds, settings."""

from __future__ import annotations

import logging
import threading

import pytest

from torch_otel.capture.buffer import IN_FLIGHT_FACTOR, RECORD_OVERHEAD_BYTES, RecordBuffer
from torch_otel.capture.components import ComponentResolver, owners_by_logger_name
from torch_otel.config.settings import BridgeSettings
from torch_otel.errors import ConfigError
from torch_otel.export.body import split_utf8, valid_utf8
from torch_otel.export.mapping import severity_for
from torch_otel.stats import BridgeStats


class FakeRegistry:
    """Stands in for torch's registry only to pin the rule on hand-made inputs;
    test_registry_of_real_torch checks the same rule against torch's real registry."""

    def __init__(self, aliases: dict[str, list[str]], artifacts: set[str]) -> None:
        self.log_alias_to_log_qnames = aliases
        self.artifact_names = artifacts


def test_longest_prefix_wins() -> None:
    resolver = ComponentResolver(
        FakeRegistry({"outer": ["pkg"], "inner": ["pkg.sub"]}, set())  # type: ignore[arg-type]
    )
    assert resolver.resolve("pkg.sub.module").component == "inner"
    assert resolver.resolve("pkg.other").component == "outer"
    assert resolver.resolve("pkg").component == "outer"


def test_shared_name_goes_to_the_alias_with_fewest_names() -> None:
    owners = owners_by_logger_name({"wide": ["a", "b", "c"], "narrow": ["b", "z"]})
    assert owners == {"a": "wide", "b": "narrow", "c": "wide", "z": "narrow"}


def test_registry_of_real_torch() -> None:
    import torch  # noqa: F401

    resolver = ComponentResolver()
    cases = {
        "torch._dynamo.convert_frame.__guards": ("dynamo", "guards"),
        "torch.fx.experimental.symbolic_shapes": ("dynamic", None),
        "torch._dynamo.backends.distributed.__ddp_graphs": ("ddp", "ddp_graphs"),
        "torch._inductor.graph.__output_code": ("inductor", "output_code"),
        "torch._functorch._aot_autograd.graph_capture.__aot_graphs": ("aot", "aot_graphs"),
        "torch.utils.some_module": ("torch", None),
    }
    for name, (component, artifact) in cases.items():
        origin = resolver.resolve(name)
        assert (origin.component, origin.artifact) == (component, artifact), name


@pytest.mark.parametrize(
    ("level", "number", "text"),
    [
        (logging.DEBUG, 5, "DEBUG"),
        (logging.INFO, 9, "INFO"),
        (logging.WARNING, 13, "WARN"),
        (logging.ERROR, 17, "ERROR"),
        (logging.CRITICAL, 21, "FATAL"),
        (logging.DEBUG + 1, 6, "DEBUG"),
        (logging.INFO + 9, 12, "INFO"),
        (5, 4, "TRACE"),
    ],
)
def test_severity_mapping(level: int, number: int, text: str) -> None:
    severity, severity_text = severity_for(level)
    assert (severity.value, severity_text) == (number, text)


@pytest.mark.parametrize("size", [4, 5, 7, 1000])
def test_split_utf8_reassembles_and_respects_the_limit(size: int) -> None:
    text = "ascii, é, 漢字, 🙂 " * 200
    pieces = split_utf8(text, size)
    assert "".join(pieces) == text
    assert all(len(piece.encode("utf-8")) <= size for piece in pieces)
    assert all(piece for piece in pieces)


def test_lone_surrogates_are_escaped_not_dropped() -> None:
    text, escaped = valid_utf8("ok \udc80 end")
    assert escaped
    assert text == "ok \\udc80 end"
    text.encode("utf-8")
    assert valid_utf8("plain") == ("plain", False)


def test_buffer_bounds_records_and_bytes_and_counts_drops() -> None:
    stats = BridgeStats()
    buffer: RecordBuffer[str] = RecordBuffer(
        max_records=3, max_bytes=10_000, wake_records=100, wake_bytes=10**9, stats=stats
    )
    assert [buffer.offer(str(i), 10) for i in range(5)] == [True, True, True, False, False]
    assert stats.snapshot().dropped == {"queue_full": 2}
    record = 100 + RECORD_OVERHEAD_BYTES
    by_bytes: RecordBuffer[str] = RecordBuffer(
        max_records=1000,
        max_bytes=10_000,
        wake_records=100,
        wake_bytes=10**9,
        stats=stats,
        max_batch_bytes=2 * record,
    )
    # Headroom for the in-flight copies of one batch: (factor - 1) x the largest batch.
    capacity = (10_000 - (IN_FLIGHT_FACTOR - 1) * 2 * record) // record
    accepted = [by_bytes.offer(str(i), 100) for i in range(capacity + 3)]
    assert accepted == [True] * capacity + [False] * 3
    assert by_bytes.queued_bytes <= 10_000
    taken, charged = by_bytes.take(10, 10**9)
    assert taken == ["0", "1"]  # capped at the batch size
    assert by_bytes.queued_bytes <= 10_000  # the batch and its copies still count...
    assert not by_bytes.offer("late", 100)  # ...so nothing fits until it is released
    by_bytes.release(charged)
    assert by_bytes.offer("late", 100)


def test_buffer_take_respects_batch_bytes_but_always_moves_one() -> None:
    buffer: RecordBuffer[str] = RecordBuffer(
        max_records=100, max_bytes=10**9, wake_records=100, wake_bytes=10**9, stats=BridgeStats()
    )
    buffer.offer("huge", 5000)
    buffer.offer("small", 10)
    assert buffer.take(10, 1000)[0] == ["huge"]
    assert buffer.take(10, 1000)[0] == ["small"]


def test_buffer_wakes_the_exporter_once_per_batch() -> None:
    wakes = []
    buffer: RecordBuffer[int] = RecordBuffer(
        max_records=100, max_bytes=10**9, wake_records=3, wake_bytes=10**9, stats=BridgeStats()
    )
    buffer.set_waker(lambda: wakes.append(threading.get_ident()))
    for i in range(7):
        buffer.offer(i, 1)
    assert len(wakes) == 1  # not again until the exporter takes a batch
    buffer.take(100, 10**9)
    for i in range(3):
        buffer.offer(i, 1)
    assert len(wakes) == 2


@pytest.mark.parametrize(
    ("arguments", "environ", "setting"),
    [
        ({"max_queue_bytes": -1}, {}, "max_queue_bytes"),
        ({}, {"TORCH_OTEL_MAX_QUEUE_RECORDS": "lots"}, "TORCH_OTEL_MAX_QUEUE_RECORDS"),
        ({}, {"TORCH_OTEL_CONSOLE": "maybe"}, "TORCH_OTEL_CONSOLE"),
        ({"flush_timeout_s": 0}, {}, "flush_timeout_s"),
        ({"max_body_bytes": 4 * 1024 * 1024}, {}, "max_body_bytes"),
        ({"ranks": "0,x"}, {}, "ranks"),
        ({"artifact_ranks": "output_code"}, {}, "artifact_ranks"),
        ({"colour": "blue"}, {}, "colour"),
        ({}, {"TORCH_OTEL_DEDUP": "sometimes"}, "TORCH_OTEL_DEDUP"),
        ({"dedup_min_bytes": 1 << 30}, {}, "dedup_min_bytes"),
    ],
)
def test_bad_settings_name_the_setting(
    arguments: dict, environ: dict[str, str], setting: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        BridgeSettings.resolve(arguments, environ)
    assert raised.value.setting == setting
    assert str(raised.value).startswith(setting)


def test_settings_precedence_argument_over_environment() -> None:
    settings = BridgeSettings.resolve(
        {"console": True, "max_queue_records": 7},
        {"TORCH_OTEL_CONSOLE": "0", "TORCH_OTEL_MAX_QUEUE_RECORDS": "9", "TORCH_OTEL_TRACE": "1"},
    )
    assert settings.console is True
    assert settings.max_queue_records == 7
    assert settings.trace is True
    assert (settings.dedup, settings.dedup_min_bytes) == (False, 4096)
    dedup = BridgeSettings.resolve(
        {"dedup_min_bytes": 512}, {"TORCH_OTEL_DEDUP": "1", "TORCH_OTEL_DEDUP_MIN_BYTES": "9000"}
    )
    assert (dedup.dedup, dedup.dedup_min_bytes) == (True, 512)
    parsed = BridgeSettings.resolve(
        {}, {"TORCH_OTEL_ARTIFACT_RANKS": "output_code=0,graph_code=0;1"}
    )
    assert parsed.artifact_ranks == {
        "output_code": frozenset({0}),
        "graph_code": frozenset({0, 1}),
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TORCH_OTEL_FLUSH_TIMEOUT", "nan"),
        ("TORCH_OTEL_FLUSH_TIMEOUT", "inf"),
        ("TORCH_OTEL_FLUSH_TIMEOUT", "-1"),
        ("TORCH_OTEL_FLUSH_TIMEOUT", "86400"),
        ("TORCH_OTEL_MAX_QUEUE_BYTES", "1e999"),
        ("TORCH_OTEL_MAX_QUEUE_BYTES", "12"),
        ("TORCH_OTEL_MAX_QUEUE_RECORDS", "2.5"),
        ("TORCH_OTEL_MAX_BODY_BYTES", "0"),
        ("TORCH_OTEL_DEDUP_MIN_BYTES", "8"),
    ],
)
def test_numbers_must_be_finite_and_in_range(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable) as caught:
        BridgeSettings.resolve({}, {variable: value})
    assert repr(value) in str(caught.value) and ".." in str(caught.value)
