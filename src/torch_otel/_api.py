"""The default bridge behind ``torch_otel.install()`` / ``uninstall()`` / ``get_bridge()``.

Kept out of the package ``__init__`` so that importing ``torch_otel`` (which the
``torch-otel run`` bootstrap does in every Python process of a job) costs next
to nothing; this module, the bridge and OpenTelemetry load on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch_otel.bridge import TorchOtelBridge
    from torch_otel.stats import StatsSnapshot


class _DefaultBridge:
    """Holds the bridge ``install()`` manages; a test can still build its own bridges."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bridge: TorchOtelBridge | None = None
        self.arguments: dict[str, Any] = {}


_default = _DefaultBridge()


def install(
    exporter: str | None = None,
    *,
    exporters: Sequence[Any] = (),
    logger_provider: Any = None,
    **options: Any,
) -> TorchOtelBridge:
    """Bridge torch's compile logs to OpenTelemetry; idempotent, returns the bridge.

    Args:
        exporter: profile name (``console``, ``otlp-grpc``, ``otlp-http``,
            ``file``, ``none``) or path to a declarative-config YAML file.
            Default: ``TORCH_OTEL_EXPORTER``, else the application's own global
            LoggerProvider if it set one, else from ``OTEL_EXPORTER_OTLP_PROTOCOL``,
            else ``otlp-grpc``.
        exporters: extra SDK log exporters to send to as well.
        logger_provider: an SDK LoggerProvider to emit into instead.
        **options: ``output``, ``console``, ``trace``, ``service_name``,
            ``max_queue_records``, ``max_queue_bytes``, ``max_batch_bytes``,
            ``max_body_bytes``, ``flush_timeout_s``, ``ranks``,
            ``artifact_ranks``, ``dedup``, ``dedup_min_bytes``, ``debug``,
            ``compile_metrics``, ``slow_compile_s``, ``spill_dir``, ``spill_max_bytes``
            (see ``docs/reference.md``).

    Raises:
        ConfigError: a setting, profile, endpoint or ``TORCH_LOGS`` is invalid.
    """
    arguments = dict(options, exporter=exporter)
    with _default.lock:
        if _default.bridge is not None and _default.bridge.active:
            if arguments != _default.arguments or exporters or logger_provider is not None:
                import logging

                logging.getLogger("torch_otel").warning(
                    "torch-otel: already installed; ignoring new settings (call uninstall() first)"
                )
            return _default.bridge
        from torch_otel.bridge import TorchOtelBridge
        from torch_otel.config.settings import BridgeSettings

        settings = BridgeSettings.resolve(arguments)
        bridge = TorchOtelBridge(settings, exporters=exporters, logger_provider=logger_provider)
        bridge.start()
        _default.bridge = bridge
        _default.arguments = arguments
        return bridge


def uninstall(timeout_s: float | None = None) -> StatsSnapshot | None:
    """Detach from torch, flush (within ``timeout_s``), restore torch's console output."""
    with _default.lock:
        bridge, _default.bridge = _default.bridge, None
    if bridge is None:
        return None
    return bridge.stop(timeout_s)


def get_bridge() -> TorchOtelBridge | None:
    """The bridge ``install()`` created, if any."""
    return _default.bridge
