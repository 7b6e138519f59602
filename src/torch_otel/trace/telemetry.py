"""Compile spans and compile metrics, from torch's structured trace (export thread only).

**Spans.** torch emits a chromium event (``chromium_event``, payload JSON with
``ph`` ``B``/``E``/``i``, ``name``, ``ts`` in µs, ``args``) at the start and
end of every timed compile phase: ``dynamo`` > ``entire_frame_compile`` >
``compile_attempt_N`` > ``bytecode_tracing``, ``backend_compile``, AOT and
inductor phases... Each ``B``/``E`` pair becomes an OTel span, nested per
thread as the events nest, with start and end times from the events, the
``E`` event's args as attributes, and an error status when the phase failed.
An ``i`` (instant) event becomes a span event on the innermost open span.

Records are processed in the order they were emitted (trace events and log
lines share one buffer), so when a log record is mapped, the spans open on its
thread are exactly those open when it was logged. The innermost one of the
record's compile becomes its span context: a backend links every ``guards`` or
``output_code`` record to its compile span.

**Metrics**, from ``compilation_metrics`` (field names as torch emits them):

============================  =======================================================
``torch.compile.cache.hits``  + ``{inductor_fx,aotautograd}_{local,remote}_cache_hit_count``
``torch.compile.cache.misses`` + the matching ``..._miss_count``; attribute
                              ``torch.compile.cache`` = ``inductor_fx_local``, ...
============================  =======================================================

and, only when compile health is off (``TORCH_OTEL_COMPILE_METRICS=0``; otherwise
``trace/health.py`` owns these, so nothing is counted twice):

============================  =======================================================
``torch.compile.compiles``    +1 per ``compilation_metrics`` (``is_runtime`` false);
                              attribute ``torch.compile.outcome`` = ``success`` or
                              the ``fail_type``
``torch.compile.recompiles``  +1 when ``recompile_reason`` is set
``torch.compile.graph_breaks`` + ``num_graph_breaks`` when reported, else
                              + ``len(restart_reasons)`` (graph-break restarts)
``torch.compile.duration``    histogram (s), one observation per span, attribute
                              ``torch.compile.phase`` = the span (event) name
============================  =======================================================

Every metric carries ``torch.component`` (``dynamo`` for the counters, the
phase's owner is not known so ``torch`` for durations) and, when known,
``torch.distributed.rank``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from torch_otel import names
from torch_otel.capture.records import CapturedRecord
from torch_otel.trace.events import event_key
from torch_otel.trace.instruments import create_instrument

CACHES = ("inductor_fx_local", "inductor_fx_remote", "aotautograd_local", "aotautograd_remote")


@dataclass
class _OpenSpan:
    name: str
    span: Any
    compile_id: str | None
    start_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)


class CompileTelemetry:
    """Turns trace records into spans and metrics; answers "which span was open" for logs."""

    def __init__(
        self, tracer: Any | None, meter: Any | None, *, compile_metrics: bool = True
    ) -> None:
        self._tracer = tracer
        self._stacks: dict[int | None, list[_OpenSpan]] = {}
        self._span_of_record: dict[int, Any] = {}
        self._instruments = _Instruments(meter, compile_metrics) if meter is not None else None
        self.spans_started = 0
        self.spans_ended = 0

    # -- per batch -------------------------------------------------------------------
    def observe(self, batch: list[CapturedRecord]) -> None:
        """Advance span/metric state through ``batch``; remember each record's span."""
        self._span_of_record = {}
        for record in batch:
            metadata = record.metadata
            if metadata is not None:
                key = event_key(metadata)
                if key == "chromium_event":
                    self._chromium(record)
                elif key == "compilation_metrics":
                    self._compilation_metrics(metadata["compilation_metrics"], metadata)
                compile_id = _trace_compile_id(metadata)
            else:
                compile_id = _record_compile_id(record)
            span_context = self._innermost(record.thread_id, compile_id)
            if span_context is not None:
                self._span_of_record[id(record)] = span_context

    def span_context_for(self, record: CapturedRecord) -> Any:
        """The span context ``observe`` found for this record (same batch), or None."""
        return self._span_of_record.get(id(record))

    def close(self) -> None:
        """End spans still open (their ``E`` event never came), marked incomplete."""
        for stack in self._stacks.values():
            while stack:
                open_span = stack.pop()
                open_span.span.set_attribute(names.TORCH_OTEL_INCOMPLETE, True)
                open_span.span.end()
                self.spans_ended += 1

    # -- spans -----------------------------------------------------------------------
    def _chromium(self, record: CapturedRecord) -> None:
        if self._tracer is None:
            return
        try:
            event = json.loads(record.message)
        except ValueError:
            return
        phase = event.get("ph")
        name = str(event.get("name", "?"))
        ts_ns = _microseconds_to_ns(event.get("ts", 0))
        args = event.get("args") or {}
        stack = self._stacks.setdefault(record.thread_id, [])
        if phase == "B":
            self._begin(stack, name, ts_ns, args, record)
        elif phase == "E":
            self._end(stack, name, ts_ns, args, record)
        elif phase in ("i", "I", "n") and stack:
            stack[-1].span.add_event(name, _flatten(args), timestamp=ts_ns)

    def _begin(
        self, stack: list[_OpenSpan], name: str, ts_ns: int, args: dict, record: CapturedRecord
    ) -> None:
        from opentelemetry.trace import set_span_in_context

        parent = set_span_in_context(stack[-1].span) if stack else None
        compile_id = args.get("compile_id")
        attributes = {names.TORCH_COMPONENT: "torch"}
        if compile_id is not None:
            attributes[names.TORCH_COMPILE_TRACE_ID] = str(compile_id)
        rank = (record.metadata or {}).get("rank")
        if isinstance(rank, int):
            attributes[names.TORCH_DISTRIBUTED_RANK] = rank
        attributes.update(_flatten(args))
        span = self._tracer.start_span(
            name, context=parent, start_time=ts_ns, attributes=attributes
        )
        stack.append(_OpenSpan(name, span, _str_or_none(compile_id), ts_ns, attributes))
        self.spans_started += 1

    def _end(
        self, stack: list[_OpenSpan], name: str, ts_ns: int, args: dict, record: CapturedRecord
    ) -> None:
        from opentelemetry.trace import Status, StatusCode

        index = next((i for i in range(len(stack) - 1, -1, -1) if stack[i].name == name), None)
        if index is None:
            return  # an end without a start (dropped, or begun before the bridge)
        while len(stack) > index + 1:  # inner phases that never ended
            inner = stack.pop()
            inner.span.set_attribute(names.TORCH_OTEL_INCOMPLETE, True)
            inner.span.end(end_time=ts_ns)
            self.spans_ended += 1
        open_span = stack.pop()
        span = open_span.span
        flat = _flatten(args)
        if flat:
            span.set_attributes(flat)
        failure = args.get("fail_type") or args.get("exception") or args.get("error")
        if failure:
            reason = args.get("fail_reason") or str(failure)
            span.set_status(Status(StatusCode.ERROR, str(reason)[:1000]))
        span.end(end_time=ts_ns)
        self.spans_ended += 1
        if self._instruments is not None:
            self._instruments.duration(
                max(ts_ns - open_span.start_ns, 0) / 1e9, name, open_span.attributes
            )

    def _innermost(self, thread_id: int | None, compile_id: str | None) -> Any:
        stack = self._stacks.get(thread_id)
        if not stack:
            return None
        for open_span in reversed(stack):
            if compile_id is None or open_span.compile_id in (None, compile_id):
                return open_span.span.get_span_context()
        return None

    # -- metrics ---------------------------------------------------------------------
    def _compilation_metrics(self, metrics: dict[str, Any], metadata: dict[str, Any]) -> None:
        if self._instruments is None or not isinstance(metrics, dict):
            return
        if metrics.get("is_runtime"):
            return
        rank = metadata.get("rank")
        self._instruments.compilation(metrics, rank if isinstance(rank, int) else None)


class _Instruments:
    """``compile_metrics``: also compiles, recompiles, graph breaks and span durations
    (false when compile health records those)."""

    def __init__(self, meter: Any, compile_metrics: bool) -> None:
        self.owns_compile_metrics = compile_metrics
        self.hits = create_instrument(meter, names.METRIC_CACHE_HITS)
        self.misses = create_instrument(meter, names.METRIC_CACHE_MISSES)
        if compile_metrics:
            self.compiles = create_instrument(meter, names.METRIC_COMPILES)
            self.recompiles = create_instrument(meter, names.METRIC_RECOMPILES)
            self.graph_breaks = create_instrument(meter, names.METRIC_GRAPH_BREAKS)
            self.durations = create_instrument(meter, names.METRIC_DURATION)

    def compilation(self, metrics: dict[str, Any], rank: int | None) -> None:
        base: dict[str, Any] = {names.TORCH_COMPONENT: "dynamo"}
        if rank is not None:
            base[names.TORCH_DISTRIBUTED_RANK] = rank
        if self.owns_compile_metrics:
            outcome = metrics.get("fail_type") or "success"
            self.compiles.add(1, {**base, names.TORCH_COMPILE_OUTCOME: str(outcome)})
            if metrics.get("recompile_reason"):
                self.recompiles.add(1, base)
            breaks = metrics.get("num_graph_breaks")
            if breaks is None:
                breaks = len(metrics.get("restart_reasons") or ())
            if breaks:
                self.graph_breaks.add(int(breaks), base)
        for cache in CACHES:
            hits = metrics.get(f"{cache}_cache_hit_count") or 0
            misses = metrics.get(f"{cache}_cache_miss_count") or 0
            if hits:
                self.hits.add(int(hits), {**base, names.TORCH_COMPILE_CACHE: cache})
            if misses:
                self.misses.add(int(misses), {**base, names.TORCH_COMPILE_CACHE: cache})

    def duration(self, seconds: float, phase: str, span_attributes: dict[str, Any]) -> None:
        if not self.owns_compile_metrics:
            return
        attributes: dict[str, Any] = {
            names.TORCH_COMPONENT: "torch",
            names.TORCH_COMPILE_PHASE: phase,
        }
        rank = span_attributes.get(names.TORCH_DISTRIBUTED_RANK)
        if rank is not None:
            attributes[names.TORCH_DISTRIBUTED_RANK] = rank
        self.durations.record(seconds, attributes)


def _flatten(args: dict[str, Any]) -> dict[str, Any]:
    """Span attributes from event args: scalars as they are, the rest as JSON text."""
    out: dict[str, Any] = {}
    for key, value in args.items():
        name = (
            names.TORCH_COMPILE_SPAN_ARG_PREFIX + key
            if key != "compile_id"
            else names.TORCH_COMPILE_TRACE_ID
        )
        if value is None:
            continue
        if isinstance(value, (str, bool, int, float)):
            out[name] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            out[name] = list(value)
        else:
            out[name] = json.dumps(value, default=repr)
    return out


def _microseconds_to_ns(value: Any) -> int:
    """Exact for torch's integer microseconds (a float product would round them)."""
    if isinstance(value, int):
        return value * 1000
    return round(float(value) * 1000)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _trace_compile_id(metadata: dict[str, Any]) -> str | None:
    frame_id = metadata.get("frame_id")
    if frame_id is None:
        return None
    return f"{frame_id}/{metadata.get('frame_compile_id')}"


def _record_compile_id(record: CapturedRecord) -> str | None:
    compile_id = record.compile_id
    if compile_id is None:
        return None
    frame_id = getattr(compile_id, "frame_id", None)
    if frame_id is None:
        return str(compile_id)
    return f"{frame_id}/{getattr(compile_id, 'frame_compile_id', None)}"
