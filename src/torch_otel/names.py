"""Every name torch-otel puts on the wire: attributes, event names, metric names.

This module is the attribute contract in code form (``docs/reference.md`` is the
same contract in prose, and a test checks that the two list the same names).
A name a user can query in a backend is defined once, here. The OpenTelemetry
semantic convention names (``code.*``, ``thread.*``, ``exception.*``) come from
``opentelemetry-semantic-conventions`` so they can never drift from the spec.
"""

from __future__ import annotations

from typing import Final

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

# --- metrics ------------------------------------------------------------------------------
METRIC_COMPILES: Final = "torch.compile.compiles"
METRIC_RECOMPILES: Final = "torch.compile.recompiles"
METRIC_GRAPH_BREAKS: Final = "torch.compile.graph_breaks"
METRIC_CACHE_HITS: Final = "torch.compile.cache.hits"
METRIC_CACHE_MISSES: Final = "torch.compile.cache.misses"
METRIC_DURATION: Final = "torch.compile.duration"

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
    return [
        METRIC_COMPILES,
        METRIC_RECOMPILES,
        METRIC_GRAPH_BREAKS,
        METRIC_CACHE_HITS,
        METRIC_CACHE_MISSES,
        METRIC_DURATION,
    ]


def drop_reasons() -> list[str]:
    """The closed vocabulary of drop reasons (see ``stats.py``)."""
    return [
        DROP_QUEUE_FULL,
        DROP_REJECTED,
        DROP_EXPORT_FAILED,
        DROP_SHUTDOWN,
        DROP_RENDER_ERROR,
    ]


def body_outcomes() -> list[str]:
    """What ``dedup`` did with large bodies (see ``stats.py``)."""
    return [BODY_PUBLISHED, BODY_REFERENCED, BODY_UNCOORDINATED]
