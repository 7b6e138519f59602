"""Names of the attributes torch-otel puts on log records and resources.

This module is the attribute contract in code form: every name a user can
query in a backend is defined once, here. The OpenTelemetry semantic
convention names (``code.*``, ``thread.*``, ``exception.*``) are taken from
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
# Set when part of a record could not be rendered faithfully (a lazy argument
# whose ``__str__`` raised, text that is not valid UTF-8): the body then holds
# a marker instead of the failing part, and this attribute says why.
TORCH_OTEL_RENDER_ERROR: Final = "torch_otel.render_error"

# --- resource attributes --------------------------------------------------------------
TORCH_DISTRIBUTED_LOCAL_RANK: Final = "torch.distributed.local_rank"
TORCH_DISTRIBUTED_WORLD_SIZE: Final = "torch.distributed.world_size"
TORCH_ELASTIC_RUN_ID: Final = "torch.elastic.run_id"
SLURM_JOB_ID: Final = "slurm.job.id"

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
