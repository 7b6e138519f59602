"""Every name torch-otel puts on the wire: attributes, event names, metric names.

This module is the attribute contract in code form (``docs/reference.md`` is the
same contract in prose, and a test checks that the two list the same names).
A name a user can query in a backend is defined once, here. The OpenTelemetry
semantic convention names (``code.*``, ``thread.*``, ``exception.*``) come from
``opentelemetry-semantic-conventions`` so they can never drift from the spec.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from opentelemetry.semconv._incubating.attributes import thread_attributes
from opentelemetry.semconv.attributes import code_attributes, exception_attributes

# --- torch-specific record attributes -------------------------------------------------
TORCH_COMPONENT: Final = "torch.component"
TORCH_ARTIFACT: Final = "torch.artifact"
TORCH_COMPILE_TRACE_ID: Final = "torch.compile.trace_id"
TORCH_COMPILE_FRAME_ID: Final = "torch.compile.frame_id"
TORCH_COMPILE_FRAME_COMPILE_ID: Final = "torch.compile.frame_compile_id"
TORCH_COMPILE_ATTEMPT: Final = "torch.compile.attempt"
TORCH_COMPILED_AUTOGRAD_ID: Final = "torch.compiled_autograd.id"
TORCH_DISTRIBUTED_RANK: Final = "torch.distributed.rank"
TORCH_ARTIFACT_CHUNK_INDEX: Final = "torch.artifact.chunk.index"
TORCH_ARTIFACT_CHUNK_COUNT: Final = "torch.artifact.chunk.count"
TORCH_ARTIFACT_CHUNK_GROUP: Final = "torch.artifact.chunk.group"
TORCH_ARTIFACT_SHA256: Final = "torch.artifact.sha256"
"""With ``dedup``: the SHA-256 (hex) of a large body's UTF-8 bytes, whole (before chunking)."""
TORCH_ARTIFACT_BODY_REF: Final = "torch.artifact.body_ref"
"""With ``dedup``: set (to the SHA-256) on a record sent with an empty body because
another record of the job (another rank, or this one earlier) sent that body."""
TORCH_OTEL_RENDER_ERROR: Final = "torch_otel.render_error"
"""Set when part of a record could not be rendered faithfully (a lazy argument whose
``__str__`` raised, text that is not valid UTF-8): the body then holds a marker
instead of the failing part, and this attribute says why."""

# --- structured trace (--trace) records and spans -------------------------------------
TORCH_TRACE_EVENT_PREFIX: Final = "torch.trace."
"""Event names of structured-trace records: ``torch.trace.<key>``."""
TORCH_TRACE_METADATA: Final = "torch.trace.metadata"
TORCH_TRACE_PREFIX: Final = "torch.trace.prefix"
TORCH_OTEL_INCOMPLETE: Final = "torch_otel.incomplete"
"""On a span whose end event never came (the process ended first)."""
TORCH_COMPILE_SPAN_ARG_PREFIX: Final = "torch.compile."
"""Span attributes from chromium-event args: ``torch.compile.<arg>``."""

# --- metric attributes ------------------------------------------------------------------
TORCH_COMPILE_OUTCOME: Final = "torch.compile.outcome"
TORCH_COMPILE_PHASE: Final = "torch.compile.phase"
TORCH_COMPILE_CACHE: Final = "torch.compile.cache"
TORCH_COMPILE_RECOMPILE_REASON: Final = "torch.compile.recompile.reason"
"""The first failed guard of a recompile, normalised (see ``trace/recompile_reasons.py``)."""
TORCH_COMPILE_GRAPH_BREAK_TYPE: Final = "torch.compile.graph_break.type"
TORCH_COMPILE_GRAPH_BREAK_ID: Final = "torch.compile.graph_break.id"
"""``GBxxxx`` from torch's ``graph_break_registry.json``, when the type is registered there."""

# --- compile health: slow-compile events (log records with an event name) ---------------
EVENT_COMPILE_SLOW: Final = "torch.compile.slow"
EVENT_COMPILE_SLOW_FINISHED: Final = "torch.compile.slow.finished"
TORCH_COMPILE_ELAPSED: Final = "torch.compile.elapsed"
"""Seconds the compile had been running (``slow``) or ran in all (``slow.finished``)."""
TORCH_COMPILE_SLOW_THRESHOLD: Final = "torch.compile.slow.threshold"
"""The threshold in seconds (``TORCH_OTEL_SLOW_COMPILE_S``) the compile passed."""
TORCH_COMPILE_TRIGGER: Final = "torch.compile.trigger"
"""What started the compile: ``dynamo`` (a frame) or ``lazy_backward`` (its backward)."""

# --- metrics ------------------------------------------------------------------------------
METRIC_COMPILES: Final = "torch.compile.compiles"
METRIC_RECOMPILES: Final = "torch.compile.recompiles"
METRIC_GRAPH_BREAKS: Final = "torch.compile.graph_breaks"
METRIC_CACHE_HITS: Final = "torch.compile.cache.hits"
METRIC_CACHE_MISSES: Final = "torch.compile.cache.misses"
METRIC_DURATION: Final = "torch.compile.duration"
METRIC_IN_FLIGHT: Final = "torch.compile.in_flight"


class MetricSpec(NamedTuple):
    """One instrument: its name, kind, unit and description, defined once.

    The instruments are created from these (``trace/``), and the dashboard test
    derives the Prometheus names from them (``tests/infra``).
    """

    name: str
    kind: str  # "counter", "up_down_counter" or "histogram"
    unit: str
    description: str


METRICS: Final = (
    MetricSpec(METRIC_COMPILES, "counter", "{compile}", "torch.compile frame compiles"),
    MetricSpec(METRIC_RECOMPILES, "counter", "{compile}", "recompiles, by the first failed guard"),
    MetricSpec(METRIC_GRAPH_BREAKS, "counter", "{break}", "graph breaks, by type and location"),
    MetricSpec(METRIC_CACHE_HITS, "counter", "{hit}", "compile cache hits"),
    MetricSpec(METRIC_CACHE_MISSES, "counter", "{miss}", "compile cache misses"),
    MetricSpec(METRIC_DURATION, "histogram", "s", "compile time, whole compiles and phases"),
    MetricSpec(METRIC_IN_FLIGHT, "up_down_counter", "{compile}", "compiles running now"),
)
METRIC_SPECS: Final = {spec.name: spec for spec in METRICS}

DURATION_BUCKETS_S: Final = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0,
)  # fmt: skip
"""Histogram buckets of ``torch.compile.duration``: compiles last 10 ms to an hour."""

# --- resource attributes --------------------------------------------------------------
TORCH_DISTRIBUTED_LOCAL_RANK: Final = "torch.distributed.local_rank"
TORCH_DISTRIBUTED_WORLD_SIZE: Final = "torch.distributed.world_size"
TORCH_ELASTIC_RUN_ID: Final = "torch.elastic.run_id"
SLURM_JOB_ID: Final = "slurm.job.id"
SERVICE_NAME: Final = "service.name"
PROCESS_PID: Final = "process.pid"
DEFAULT_SERVICE_NAME: Final = "torch-job"

# --- OpenTelemetry semantic conventions -----------------------------------------------
CODE_FILE_PATH: Final = code_attributes.CODE_FILE_PATH
CODE_LINE_NUMBER: Final = code_attributes.CODE_LINE_NUMBER
CODE_FUNCTION_NAME: Final = code_attributes.CODE_FUNCTION_NAME
CODE_STACKTRACE: Final = code_attributes.CODE_STACKTRACE
THREAD_ID: Final = thread_attributes.THREAD_ID
THREAD_NAME: Final = thread_attributes.THREAD_NAME
EXCEPTION_TYPE: Final = exception_attributes.EXCEPTION_TYPE
EXCEPTION_MESSAGE: Final = exception_attributes.EXCEPTION_MESSAGE
EXCEPTION_STACKTRACE: Final = exception_attributes.EXCEPTION_STACKTRACE

# --- drop reasons (counters and the exit line) -------------------------------------------
DROP_QUEUE_FULL: Final = "queue_full"
DROP_REJECTED: Final = "rejected"
DROP_EXPORT_FAILED: Final = "export_failed"
DROP_SHUTDOWN: Final = "shutdown"
DROP_RENDER_ERROR: Final = "render_error"
DROP_REDIRECTED: Final = "redirected"
DROP_BAD_RESPONSE: Final = "bad_response"
DROP_PARTIALLY_REJECTED: Final = "partially_rejected"
DROP_AFTER_SHUTDOWN: Final = "after_shutdown"
DROP_SPILL_FULL: Final = "spill_full"

# --- what happened to large bodies with ``dedup`` (counters) ----------------------------
BODY_PUBLISHED: Final = "published"
"""The first in the job to send this body: sent in full."""
BODY_REFERENCED: Final = "referenced"
"""Sent before (by another rank, or by this process): sent as a reference."""
BODY_UNCOORDINATED: Final = "uncoordinated"
"""Sent in full because the job's store could not be asked (no process group, store
error or timeout)."""

INSTRUMENTATION_NAME: Final = "torch_otel"
"""The tracer and meter name of the spans and metrics torch-otel produces."""


def record_attribute_names() -> list[str]:
    """Every log-record attribute name the bridge can emit (for docs checks)."""
    return [
        TORCH_COMPONENT,
        TORCH_ARTIFACT,
        TORCH_COMPILE_TRACE_ID,
        TORCH_COMPILE_FRAME_ID,
        TORCH_COMPILE_FRAME_COMPILE_ID,
        TORCH_COMPILE_ATTEMPT,
        TORCH_COMPILED_AUTOGRAD_ID,
        TORCH_DISTRIBUTED_RANK,
        TORCH_ARTIFACT_CHUNK_INDEX,
        TORCH_ARTIFACT_CHUNK_COUNT,
        TORCH_ARTIFACT_CHUNK_GROUP,
        TORCH_ARTIFACT_SHA256,
        TORCH_ARTIFACT_BODY_REF,
        TORCH_OTEL_RENDER_ERROR,
        TORCH_TRACE_METADATA,
        TORCH_TRACE_PREFIX,
        CODE_FILE_PATH,
        CODE_LINE_NUMBER,
        CODE_FUNCTION_NAME,
        CODE_STACKTRACE,
        THREAD_ID,
        THREAD_NAME,
        EXCEPTION_TYPE,
        EXCEPTION_MESSAGE,
        EXCEPTION_STACKTRACE,
    ]


def resource_attribute_names() -> list[str]:
    """Resource attributes torch-otel adds beyond the SDK's (for docs checks)."""
    return [
        SERVICE_NAME,
        TORCH_DISTRIBUTED_RANK,
        TORCH_DISTRIBUTED_LOCAL_RANK,
        TORCH_DISTRIBUTED_WORLD_SIZE,
        TORCH_ELASTIC_RUN_ID,
        SLURM_JOB_ID,
    ]


def metric_names() -> list[str]:
    """Every metric torch-otel emits (for docs and dashboard checks)."""
    return [spec.name for spec in METRICS]


def metric_attribute_names() -> list[str]:
    """Attributes of metric points and compile-health events beyond the record ones."""
    return [
        TORCH_COMPILE_OUTCOME,
        TORCH_COMPILE_PHASE,
        TORCH_COMPILE_CACHE,
        TORCH_COMPILE_RECOMPILE_REASON,
        TORCH_COMPILE_GRAPH_BREAK_TYPE,
        TORCH_COMPILE_GRAPH_BREAK_ID,
        TORCH_COMPILE_ELAPSED,
        TORCH_COMPILE_SLOW_THRESHOLD,
        TORCH_COMPILE_TRIGGER,
    ]


def event_names() -> list[str]:
    """Event names of the log records torch-otel creates itself (not torch's)."""
    return [EVENT_COMPILE_SLOW, EVENT_COMPILE_SLOW_FINISHED]


def drop_reasons() -> list[str]:
    """The closed vocabulary of drop reasons (see ``stats.py``)."""
    return [
        DROP_QUEUE_FULL,
        DROP_REJECTED,
        DROP_EXPORT_FAILED,
        DROP_SHUTDOWN,
        DROP_RENDER_ERROR,
        DROP_REDIRECTED,
        DROP_BAD_RESPONSE,
        DROP_PARTIALLY_REJECTED,
        DROP_AFTER_SHUTDOWN,
        DROP_SPILL_FULL,
    ]


def body_outcomes() -> list[str]:
    """What ``dedup`` did with large bodies (see ``stats.py``)."""
    return [BODY_PUBLISHED, BODY_REFERENCED, BODY_UNCOORDINATED]
