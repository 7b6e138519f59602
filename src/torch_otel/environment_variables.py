"""Every environment variable torch-otel reads or sets, in one place.

Each ``TORCH_OTEL_*`` setting takes effect only where the matching ``install()``
argument or CLI flag is not given. The standard ``OTEL_*`` variables are honoured
through the exporter profiles (``${OTEL_EXPORTER_OTLP_ENDPOINT:-...}``) and the
OpenTelemetry SDK; the ones torch-otel reads itself are listed here too, as are
the torch and launcher variables it reads. ``docs/reference.md`` lists them all (a
test checks it).
"""

from __future__ import annotations

# Plain constants, no ``typing`` import: the ``torch-otel run`` bootstrap reads this
# module at every interpreter start, where each millisecond is paid by every process.

# --- torch-otel settings ------------------------------------------------------------------
TORCH_OTEL_EXPORTER = "TORCH_OTEL_EXPORTER"
"""Exporter profile: a name from ``exporters/`` (``console``, ``otlp-grpc``,
``otlp-http``, ``file``, ``none``) or a path to a declarative-config YAML file."""

TORCH_OTEL_OUTPUT = "TORCH_OTEL_OUTPUT"
"""Output path of the ``file`` profile (OTLP/JSON lines); ``{rank}`` and ``{pid}`` are
replaced by each process's rank and pid."""

TORCH_OTEL_CONSOLE = "TORCH_OTEL_CONSOLE"
"""``1`` (default) keeps torch's own stderr output; ``0`` removes it."""

TORCH_OTEL_TRACE = "TORCH_OTEL_TRACE"
"""``1`` also bridges torch's structured trace (``torch.__trace``)."""

TORCH_OTEL_MAX_QUEUE_RECORDS = "TORCH_OTEL_MAX_QUEUE_RECORDS"
"""Most records held between the compile thread and the exporter."""

TORCH_OTEL_MAX_QUEUE_BYTES = "TORCH_OTEL_MAX_QUEUE_BYTES"
"""Most bytes of record text held between the compile thread and the exporter."""

TORCH_OTEL_MAX_BATCH_BYTES = "TORCH_OTEL_MAX_BATCH_BYTES"
"""Largest export request the bridge builds (must fit the collector's limit)."""

TORCH_OTEL_MAX_BODY_BYTES = "TORCH_OTEL_MAX_BODY_BYTES"
"""Bodies longer than this are split into chunks."""

TORCH_OTEL_FLUSH_TIMEOUT = "TORCH_OTEL_FLUSH_TIMEOUT"
"""Seconds the process may spend at exit sending what is still queued."""

TORCH_OTEL_RANKS = "TORCH_OTEL_RANKS"
"""Comma-separated ranks that export at all (default: every rank)."""

TORCH_OTEL_ARTIFACT_RANKS = "TORCH_OTEL_ARTIFACT_RANKS"
"""Per-artifact rank filter, e.g. ``output_code=0,graph_code=0``."""

TORCH_OTEL_SPILL_DIR = "TORCH_OTEL_SPILL_DIR"
"""A directory where export requests wait on disk for the collector (crash-safe, replayable)."""

TORCH_OTEL_SPILL_MAX_BYTES = "TORCH_OTEL_SPILL_MAX_BYTES"
"""The most bytes of spilled requests in the spill directory (default 1 GiB)."""
TORCH_OTEL_DEDUP = "TORCH_OTEL_DEDUP"
"""``1``: large bodies identical across the job's ranks are sent once (cross-rank
de-duplication through the job's ``torch.distributed`` store)."""

TORCH_OTEL_DEDUP_MIN_BYTES = "TORCH_OTEL_DEDUP_MIN_BYTES"
"""Smallest body (UTF-8 bytes) that is hashed and de-duplicated (default 4096)."""

TORCH_OTEL_DEBUG = "TORCH_OTEL_DEBUG"
"""``1`` prints torch-otel's own decisions (profile chosen, provider reused)."""

TORCH_OTEL_COMPILE_METRICS = "TORCH_OTEL_COMPILE_METRICS"
"""``1`` (default) records compile-health metrics and slow-compile events; ``0`` turns
them off (torch's compile hooks are then never touched)."""

TORCH_OTEL_SLOW_COMPILE_S = "TORCH_OTEL_SLOW_COMPILE_S"
"""Seconds after which a running compile is reported as slow (default 300)."""

# --- set by torch-otel for the processes it starts ---------------------------------------
TORCH_OTEL_BOOTSTRAP = "TORCH_OTEL_BOOTSTRAP"
"""Set to ``1`` by ``torch-otel run``: the bootstrap ``sitecustomize`` installs the
bridge in this process once torch is imported."""

TORCH_OTEL_RESOLVED_PROFILE = "TORCH_OTEL_RESOLVED_PROFILE"
"""Set by ``torch-otel run``: the profile it validated (JSON, fingerprinted), so each
Python process of the job skips loading ``opentelemetry-configuration`` again."""

# --- standard OpenTelemetry variables torch-otel reads itself ------------------------------
OTEL_CONFIG_FILE = "OTEL_CONFIG_FILE"
OTEL_EXPORTER_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
OTEL_EXPORTER_OTLP_LOGS_PROTOCOL = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"
OTEL_EXPORTER_OTLP_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
OTEL_SERVICE_NAME = "OTEL_SERVICE_NAME"

# --- torch's own variables ------------------------------------------------------------------
TORCH_LOGS = "TORCH_LOGS"
"""torch's logging settings; torch-otel validates it (torch's own parser) and mirrors it."""

TORCH_LOGS_TRACE_ID_FILTER = "TORCH_LOGS_TRACE_ID_FILTER"
"""torch's compile-id filter (``[0/1],[1/0]``); the bridge applies it as torch does."""

# --- the launcher's variables (resource attributes) --------------------------------------
RANK = "RANK"
LOCAL_RANK = "LOCAL_RANK"
WORLD_SIZE = "WORLD_SIZE"
TORCHELASTIC_RUN_ID = "TORCHELASTIC_RUN_ID"
SLURM_PROCID = "SLURM_PROCID"
SLURM_LOCALID = "SLURM_LOCALID"
SLURM_NTASKS = "SLURM_NTASKS"
SLURM_JOB_ID = "SLURM_JOB_ID"


def torch_otel_settings() -> list[str]:
    """The ``TORCH_OTEL_*`` variables a user sets (for docs checks)."""
    return [
        TORCH_OTEL_EXPORTER,
        TORCH_OTEL_OUTPUT,
        TORCH_OTEL_CONSOLE,
        TORCH_OTEL_TRACE,
        TORCH_OTEL_MAX_QUEUE_RECORDS,
        TORCH_OTEL_MAX_QUEUE_BYTES,
        TORCH_OTEL_MAX_BATCH_BYTES,
        TORCH_OTEL_MAX_BODY_BYTES,
        TORCH_OTEL_FLUSH_TIMEOUT,
        TORCH_OTEL_RANKS,
        TORCH_OTEL_ARTIFACT_RANKS,
        TORCH_OTEL_SPILL_DIR,
        TORCH_OTEL_SPILL_MAX_BYTES,
        TORCH_OTEL_DEDUP,
        TORCH_OTEL_DEDUP_MIN_BYTES,
        TORCH_OTEL_DEBUG,
        TORCH_OTEL_COMPILE_METRICS,
        TORCH_OTEL_SLOW_COMPILE_S,
    ]


def all_variables() -> list[str]:
    """Every variable named in this module (for docs checks)."""
    return sorted(
        value for name, value in globals().items() if isinstance(value, str) and name == value
    )
