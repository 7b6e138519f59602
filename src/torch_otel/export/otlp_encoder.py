"""A fast OTLP/protobuf encoder for bridged torch records (export thread only).

Why not the SDK's ``encode_logs``: building one protobuf object per attribute
per record, and hashing the ``Resource`` (a JSON dump) per record, costs
60-100 µs per record - more than everything else the bridge does together. But
most of a torch record never changes between records of the same call site:
the component, artifact, code location and thread attributes are the same for
every record logged from one line of torch, and the compile-id attributes are
the same for every record of one compile. So those are encoded once and cached
as bytes, and a record costs a few byte concatenations.

The wire format is the official one: field numbers are read from the
``opentelemetry-proto`` descriptors at import time, never typed in by hand, and
``tests/unit/test_otlp_encoder.py`` checks that the bytes parse with the official
``ExportLogsServiceRequest`` into exactly what the SDK encoder produces.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

from torch_otel import names
from torch_otel.capture.records import CapturedRecord
from torch_otel.export.body import valid_utf8
from torch_otel.export.mapping import RecordMapper, compile_id_attributes, severity_for
from torch_otel.export.sink import EncodedLogsRequest

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


def _field(message: Any, name: str) -> int:
    return message.DESCRIPTOR.fields_by_name[name].number


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 negative: ten-byte two's complement
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


_LR = logs_pb2.LogRecord
_TIME = _tag(_field(_LR, "time_unix_nano"), _FIXED64)
_OBSERVED = _tag(_field(_LR, "observed_time_unix_nano"), _FIXED64)
_SEVERITY = _tag(_field(_LR, "severity_number"), _VARINT)
_SEVERITY_TEXT = _tag(_field(_LR, "severity_text"), _LEN)
_BODY = _tag(_field(_LR, "body"), _LEN)
_ATTRIBUTE = _tag(_field(_LR, "attributes"), _LEN)
_FLAGS = _tag(_field(_LR, "flags"), _FIXED32)
_TRACE_ID = _tag(_field(_LR, "trace_id"), _LEN)
_SPAN_ID = _tag(_field(_LR, "span_id"), _LEN)
_EVENT_NAME = _tag(_field(_LR, "event_name"), _LEN)
_KV_KEY = _tag(_field(common_pb2.KeyValue, "key"), _LEN)
_KV_VALUE = _tag(_field(common_pb2.KeyValue, "value"), _LEN)
_AV = common_pb2.AnyValue
_STRING_VALUE = _tag(_field(_AV, "string_value"), _LEN)
_BOOL_VALUE = _tag(_field(_AV, "bool_value"), _VARINT)
_INT_VALUE = _tag(_field(_AV, "int_value"), _VARINT)
_DOUBLE_VALUE = _tag(_field(_AV, "double_value"), _FIXED64)
_ARRAY_VALUE = _tag(_field(_AV, "array_value"), _LEN)
_ARRAY_ITEM = _tag(_field(common_pb2.ArrayValue, "values"), _LEN)
_SCOPE = _tag(_field(logs_pb2.ScopeLogs, "scope"), _LEN)
_SCOPE_RECORD = _tag(_field(logs_pb2.ScopeLogs, "log_records"), _LEN)
_SCOPE_NAME = _tag(_field(common_pb2.InstrumentationScope, "name"), _LEN)
_RESOURCE = _tag(_field(logs_pb2.ResourceLogs, "resource"), _LEN)
_RESOURCE_SCOPE_LOGS = _tag(_field(logs_pb2.ResourceLogs, "scope_logs"), _LEN)
_REQUEST_RESOURCE_LOGS = _tag(
    _field(logs_service_pb2.ExportLogsServiceRequest, "resource_logs"), _LEN
)
_PACK_Q = struct.Struct("<Q").pack
_PACK_D = struct.Struct("<d").pack
_PACK_I = struct.Struct("<I").pack


def any_value_bytes(value: Any) -> bytes:
    """An ``AnyValue`` for a Python attribute value (str, bool, int, float, else str())."""
    if isinstance(value, str):
        return _len_field(_STRING_VALUE, valid_utf8(value)[0].encode("utf-8"))
    if isinstance(value, bool):
        return _BOOL_VALUE + (b"\x01" if value else b"\x00")
    if isinstance(value, int) and -(1 << 63) <= value < (1 << 63):
        return _INT_VALUE + _varint(value)
    if isinstance(value, float):
        return _DOUBLE_VALUE + _PACK_D(value)
    if isinstance(value, (list, tuple)):
        items = b"".join(_len_field(_ARRAY_ITEM, any_value_bytes(item)) for item in value)
        return _len_field(_ARRAY_VALUE, items)
    return _len_field(_STRING_VALUE, valid_utf8(str(value))[0].encode("utf-8"))


def key_value_bytes(key: str, value: Any) -> bytes:
    """One ``KeyValue`` message (without the enclosing field tag)."""
    return _len_field(_KV_KEY, key.encode("utf-8")) + _len_field(_KV_VALUE, any_value_bytes(value))


def attributes_bytes(attributes: Mapping[str, Any]) -> bytes:
    """Repeated ``attributes`` fields of a LogRecord."""
    return b"".join(
        _len_field(_ATTRIBUTE, key_value_bytes(key, value)) for key, value in attributes.items()
    )


def resource_message_bytes(resource: Any) -> bytes:
    """The SDK resource as an OTLP ``Resource`` message (built once, with the official class)."""
    message = resource_pb2.Resource()
    for key, value in resource.attributes.items():
        kv = message.attributes.add()
        kv.MergeFromString(key_value_bytes(key, value))
    return message.SerializeToString()


class OtlpLogEncoder:
    """Encodes batches of captured records into size-bounded OTLP export requests."""

    def __init__(self, mapper: RecordMapper, *, max_request_bytes: int) -> None:
        self._mapper = mapper
        self.max_request_bytes = max_request_bytes
        self._resource = _len_field(_RESOURCE, resource_message_bytes(mapper.resource))
        self._static: dict[tuple[Any, ...], bytes] = {}
        self._compile: dict[tuple[Any, int | None], bytes] = {}
        self._rank: dict[int, bytes] = {}
        self._scopes: dict[str, bytes] = {}
        self._severity: dict[int, bytes] = {}

    def encode(self, captured: list[CapturedRecord], observed_ns: int) -> list[EncodedLogsRequest]:
        """Pack ``captured`` into requests of at most about ``max_request_bytes`` each."""
        requests: list[EncodedLogsRequest] = []
        by_scope: dict[str, list[bytes]] = {}
        size = count = 0
        for record in captured:
            for encoded in self._encode_record(record, observed_ns):
                entry = len(encoded) + 6
                if count and size + entry > self.max_request_bytes:
                    requests.append(self._request(by_scope, count))
                    by_scope, size, count = {}, 0, 0
                by_scope.setdefault(record.logger_name, []).append(encoded)
                size += entry
                count += 1
        if count:
            requests.append(self._request(by_scope, count))
        return requests

    def _request(self, by_scope: dict[str, list[bytes]], count: int) -> EncodedLogsRequest:
        scope_logs = []
        for name, records in by_scope.items():
            body = self._scope_header(name) + b"".join(
                _SCOPE_RECORD + _varint(len(encoded)) + encoded for encoded in records
            )
            scope_logs.append(_len_field(_RESOURCE_SCOPE_LOGS, body))
        resource_logs = self._resource + b"".join(scope_logs)
        return EncodedLogsRequest(_len_field(_REQUEST_RESOURCE_LOGS, resource_logs), count)

    def _scope_header(self, name: str) -> bytes:
        header = self._scopes.get(name)
        if header is None:
            header = self._scopes[name] = _len_field(
                _SCOPE, _len_field(_SCOPE_NAME, name.encode("utf-8"))
            )
        return header

    def _encode_record(self, record: CapturedRecord, observed_ns: int) -> Iterator[bytes]:
        head = (
            _TIME
            + _PACK_Q(int(record.created * 1e9))
            + _OBSERVED
            + _PACK_Q(observed_ns)
            + self._severity_bytes(record.levelno)
        )
        attributes = self._static_bytes(record)
        if record.compile_id is not None:
            attributes += self._compile_bytes(record.compile_id, record.attempt)
        if record.rank is not None:
            attributes += self._rank_bytes(record.rank)
        pieces, extra = self._mapper.body_and_extra(record)
        if extra:
            attributes += attributes_bytes(extra)
        tail = self._span_bytes(record) + self._event_name_bytes(record)
        for piece, chunk_attributes in pieces:
            yield head + _body(piece) + attributes + attributes_bytes(chunk_attributes) + tail

    def _severity_bytes(self, levelno: int) -> bytes:
        encoded = self._severity.get(levelno)
        if encoded is None:
            number, text = severity_for(levelno)
            encoded = _SEVERITY + _varint(number.value) + _len_field(_SEVERITY_TEXT, text.encode())
            self._severity[levelno] = encoded
        return encoded

    def _static_bytes(self, record: CapturedRecord) -> bytes:
        key = (
            record.logger_name,
            record.pathname,
            record.lineno,
            record.func_name,
            record.thread_id,
            record.thread_name,
        )
        encoded = self._static.get(key)
        if encoded is None:
            encoded = self._static[key] = attributes_bytes(self._mapper.static_attributes(record))
        return encoded

    def _compile_bytes(self, compile_id: Any, attempt: int | None) -> bytes:
        key = (compile_id, attempt)
        encoded = self._compile.get(key)
        if encoded is None:
            encoded = self._compile[key] = attributes_bytes(
                compile_id_attributes(compile_id, attempt)
            )
        return encoded

    def _rank_bytes(self, rank: int) -> bytes:
        encoded = self._rank.get(rank)
        if encoded is None:
            encoded = self._rank[rank] = attributes_bytes({names.TORCH_DISTRIBUTED_RANK: rank})
        return encoded

    def _span_bytes(self, record: CapturedRecord) -> bytes:
        lookup = self._mapper.span_lookup
        if lookup is None:
            return b""
        span_context = lookup(record)
        if span_context is None or not span_context.is_valid:
            return b""
        return (
            _len_field(_TRACE_ID, span_context.trace_id.to_bytes(16, "big"))
            + _len_field(_SPAN_ID, span_context.span_id.to_bytes(8, "big"))
            + _FLAGS
            + _PACK_I(int(span_context.trace_flags))
        )

    def _event_name_bytes(self, record: CapturedRecord) -> bytes:
        name = self._mapper.event_name(record)
        return b"" if name is None else _len_field(_EVENT_NAME, name.encode("utf-8"))


def _body(text: str) -> bytes:
    return _len_field(_BODY, _len_field(_STRING_VALUE, text.encode("utf-8")))
