"""Environment variables torch-otel reads, for runs configured without code.

Each takes effect only where the matching ``install()`` argument or CLI flag
is not given. The standard ``OTEL_*`` variables (endpoint, protocol, headers,
certificates, service name, resource attributes) are honoured through the
exporter profiles and the OpenTelemetry SDK, and are not repeated here.
"""

from __future__ import annotations

from typing import Final

TORCH_OTEL_EXPORTER: Final = "TORCH_OTEL_EXPORTER"
"""Exporter profile: a name from ``exporters/`` (``console``, ``otlp-grpc``,
``otlp-http``, ``file``, ``none``) or a path to a declarative-config YAML file."""

TORCH_OTEL_OUTPUT: Final = "TORCH_OTEL_OUTPUT"
"""Output path of the ``file`` profile (OTLP/JSON lines)."""

TORCH_OTEL_CONSOLE: Final = "TORCH_OTEL_CONSOLE"
"""``1`` (default) keeps torch's own stderr output; ``0`` removes it."""

TORCH_OTEL_TRACE: Final = "TORCH_OTEL_TRACE"
"""``1`` also bridges torch's structured trace (``torch.__trace``)."""

TORCH_OTEL_MAX_QUEUE_RECORDS: Final = "TORCH_OTEL_MAX_QUEUE_RECORDS"
"""Most records held between the compile thread and the exporter."""

TORCH_OTEL_MAX_QUEUE_BYTES: Final = "TORCH_OTEL_MAX_QUEUE_BYTES"
"""Most bytes of record text held between the compile thread and the exporter."""

TORCH_OTEL_MAX_BATCH_BYTES: Final = "TORCH_OTEL_MAX_BATCH_BYTES"
"""Largest export request the bridge builds (must fit the collector's limit)."""

TORCH_OTEL_MAX_BODY_BYTES: Final = "TORCH_OTEL_MAX_BODY_BYTES"
"""Bodies longer than this are split into chunks."""

TORCH_OTEL_FLUSH_TIMEOUT: Final = "TORCH_OTEL_FLUSH_TIMEOUT"
"""Seconds the process may spend at exit sending what is still queued."""

TORCH_OTEL_RANKS: Final = "TORCH_OTEL_RANKS"
"""Comma-separated ranks that export at all (default: every rank)."""

TORCH_OTEL_ARTIFACT_RANKS: Final = "TORCH_OTEL_ARTIFACT_RANKS"
"""Per-artifact rank filter, e.g. ``output_code=0,graph_code=0``."""

TORCH_OTEL_DEBUG: Final = "TORCH_OTEL_DEBUG"
"""``1`` prints torch-otel's own decisions (profile chosen, provider reused)."""

OTEL_CONFIG_FILE: Final = "OTEL_CONFIG_FILE"
OTEL_EXPORTER_OTLP_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_PROTOCOL"
OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"
