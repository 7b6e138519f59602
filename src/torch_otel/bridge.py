"""The bridge: one object that owns every piece, so a test can build two.

``TorchOtelBridge`` wires together the registry resolver, the handler on the
compile thread, the bounded buffer, the export thread with its sinks, the
``_init_logs`` synchronisation and the process lifecycle hooks. Nothing here
is module-global; ``torch_otel.install()`` merely keeps one default bridge.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from torch_otel.buffer import RecordBuffer
from torch_otel.errors import ConfigError
from torch_otel.handler import BridgeHandler, CapturedRecord
from torch_otel.lifecycle import ExitHooks
from torch_otel.pipeline import (
    ExporterSink,
    ExportPipeline,
    PipelineSettings,
    ProviderSink,
    Sink,
)
from torch_otel.profiles import BatchSettings, Profile, default_profile_name, load_profile
from torch_otel.registry import ComponentResolver
from torch_otel.settings import BridgeSettings
from torch_otel.stats import BridgeStats, StatsSnapshot
from torch_otel.torch_logging import TorchLoggingSync

_log = logging.getLogger("torch_otel")


class TorchOtelBridge:
    """Bridges torch's compile logs into OpenTelemetry. Build, ``start()``, ``stop()``.

    Args:
        settings: validated :class:`~torch_otel.settings.BridgeSettings`.
        exporters: extra SDK ``LogRecordExporter`` objects to send to as well
            (tests and the demo add an in-memory one).
        logger_provider: an SDK ``LoggerProvider`` to emit into instead of
            building a pipeline from a profile. By default the application's
            global provider is used when it is an SDK one and no profile was
            chosen explicitly.
    """

    def __init__(
        self,
        settings: BridgeSettings,
        *,
        exporters: Sequence[Any] = (),
        logger_provider: Any = None,
    ) -> None:
        self.settings = settings
        self.stats = BridgeStats()
        self._extra_exporters = list(exporters)
        self._started = False
        if settings.debug:
            _enable_debug_output()

        # The application's own provider is used unless a profile was chosen explicitly.
        if logger_provider is None and not settings.exporter_from_user:
            logger_provider = self._application_provider()
        self.logger_provider = logger_provider
        self.profile: Profile | None = None
        if self.logger_provider is not None:
            _log.debug(
                "torch-otel: using the application's LoggerProvider %r", self.logger_provider
            )
            batch = BatchSettings(schedule_delay_s=0.2)
        else:
            self.profile = load_profile(
                settings.exporter or default_profile_name(), output=settings.output
            )
            batch = self.profile.batch
            _log.debug("torch-otel: %s", self.profile.describe())
        from torch_otel.exporters import warn_if_unencrypted

        for spec in self.profile.exporters if self.profile else ():
            warn_if_unencrypted(spec)

        self.resolver = ComponentResolver()
        max_records = settings.max_queue_records or batch.max_queue_records
        self.buffer: RecordBuffer[CapturedRecord] = RecordBuffer(
            max_records=max_records,
            max_bytes=settings.max_queue_bytes,
            # High water: past half its bounds, the buffer is exported without waiting
            # for a pause in the logging (see PipelineSettings).
            wake_records=max(max_records // 2, 1),
            wake_bytes=settings.max_queue_bytes // 2,
            stats=self.stats,
            max_batch_bytes=settings.max_batch_bytes,
        )
        self.handler = BridgeHandler(self.buffer, trace_id_filter=_trace_id_filter())
        self.pipeline = ExportPipeline(
            self.buffer,
            encoders={"sdk": self._sdk_requests, "otlp": self._otlp_requests},
            make_sinks=self._make_sinks,
            stats=self.stats,
            settings=PipelineSettings(
                schedule_delay_s=batch.schedule_delay_s,
                max_batch_records=batch.max_batch_records,
                max_batch_bytes=settings.max_batch_bytes,
            ),
            on_thread_start=self._ignore_thread,
            observe=self._observe if settings.trace else None,
        )
        self._telemetry: Any = None
        self._own_signal_providers: list[Any] = []
        self._app_signal_providers: list[Any] = []
        self.trace_handler: Any = None
        if settings.trace:
            from torch_otel.trace_events import TraceHandler

            self.trace_handler = TraceHandler(self.buffer)
        self.sync = TorchLoggingSync(
            self.handler, self.resolver, console=settings.console, trace_handler=self.trace_handler
        )
        self._mapper: Any = None
        self._encoder: Any = None
        self._hooks = ExitHooks(
            on_exit=self._at_exit,
            on_fork_child=self._after_fork_in_child,
            on_prepare_exit=self._prepare_export,
        )

    # -- public API ------------------------------------------------------------------
    @property
    def exports_anything(self) -> bool:
        return bool(
            self.logger_provider is not None
            or self._extra_exporters
            or (self.profile is not None and self.profile.exporters)
        )

    @property
    def active(self) -> bool:
        return self._started

    def start(self) -> TorchOtelBridge:
        """Attach to torch's loggers and start exporting (idempotent)."""
        if self._started:
            return self
        validate_torch_logs_env()
        rank = _environment_rank()
        if self.settings.ranks is not None and rank is not None and rank not in self.settings.ranks:
            _log.debug(
                "torch-otel: rank %s is not in ranks %s; not exporting", rank, self.settings.ranks
            )
            return self
        excluded = excluded_artifacts(self.settings.artifact_ranks, rank)
        if excluded:
            self.handler.exclude_artifacts(excluded, self.resolver)
        if not self.exports_anything:
            _log.debug("torch-otel: no log exporter configured; not attaching to torch's loggers")
            return self
        self.pipeline.start()
        self.sync.start()
        self._hooks.install()
        self._started = True
        return self

    def stop(self, timeout_s: float | None = None) -> StatsSnapshot:
        """Detach, flush within the deadline, shut exporters down; returns final counts."""
        if self._started:
            self._started = False
            self._hooks.uninstall()
            self.sync.stop()
            deadline = time.monotonic() + self._deadline(timeout_s)
            self.pipeline.shutdown(self._deadline(timeout_s))
            self._stop_signal_providers(max(deadline - time.monotonic(), 0.5))
        if self.settings.debug:
            _disable_debug_output()
        return self.stats.snapshot()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Export everything queued so far; ``False`` if the deadline passed first."""
        return self.pipeline.flush(self._deadline(timeout_s))

    def counters(self) -> StatsSnapshot:
        return self.stats.snapshot()

    @property
    def last_error(self) -> str | None:
        return self.pipeline.last_error

    def __repr__(self) -> str:
        target = self.profile.describe() if self.profile else "application LoggerProvider"
        state = "started" if self._started else "stopped"
        return f"<TorchOtelBridge {state}: {target}>"

    # -- export-thread side ----------------------------------------------------------
    def _sdk_requests(self, captured: list[CapturedRecord]) -> list[Any]:
        """SDK ``ReadableLogRecord`` lists, packed by bytes (for any OTel exporter)."""
        from torch_otel.pipeline import pack_requests

        records = self._get_mapper().map_batch(captured)
        return pack_requests(
            records, self.pipeline.settings.max_batch_records, self.settings.max_batch_bytes
        )

    def _otlp_requests(self, captured: list[CapturedRecord]) -> list[Any]:
        """Pre-encoded OTLP requests (for the OTLP exporters; see ``otlp_wire``)."""
        return self._get_encoder().encode(captured, time.time_ns())

    def _get_mapper(self) -> Any:
        if self._mapper is None:
            self._mapper = self._make_mapper()
            if self._telemetry is not None:
                self._mapper.span_lookup = self._telemetry.span_context_for
        return self._mapper

    def _get_encoder(self) -> Any:
        if self._encoder is None:
            from torch_otel.otlp_wire import OtlpLogEncoder

            self._encoder = OtlpLogEncoder(
                self._get_mapper(), max_request_bytes=self.settings.max_batch_bytes
            )
        return self._encoder

    def _get_telemetry(self) -> Any:
        if self._telemetry is None:
            self._telemetry = self._make_telemetry()
            self._get_mapper().span_lookup = self._telemetry.span_context_for
        return self._telemetry

    def _observe(self, captured: list[CapturedRecord]) -> None:
        """Compile spans and metrics (``--trace``), advanced batch by batch."""
        self._get_telemetry().observe(captured)

    def _make_telemetry(self) -> Any:
        from torch_otel import __version__
        from torch_otel.compile_telemetry import CompileTelemetry
        from torch_otel.signals import (
            application_meter_provider,
            application_tracer_provider,
            build_meter_provider,
            build_tracer_provider,
        )

        resource = self._get_mapper().resource
        tracer_provider = meter_provider = None
        if self.profile is None:  # the application's own OTel setup
            tracer_provider = application_tracer_provider()
            meter_provider = application_meter_provider()
            self._app_signal_providers = [p for p in (tracer_provider, meter_provider) if p]
        else:
            tracer_provider = build_tracer_provider(self.profile.span_exporters, resource)
            meter_provider = build_meter_provider(self.profile.metric_exporters, resource)
            self._own_signal_providers = [p for p in (tracer_provider, meter_provider) if p]
        tracer = tracer_provider.get_tracer("torch_otel", __version__) if tracer_provider else None
        meter = meter_provider.get_meter("torch_otel", __version__) if meter_provider else None
        return CompileTelemetry(tracer, meter)

    def _stop_signal_providers(self, timeout_s: float) -> None:
        """End open spans, flush spans and metrics, shut down only our own providers."""
        import threading

        if self._telemetry is not None:
            self._telemetry.close()
        deadline = time.monotonic() + timeout_s
        for provider in self._own_signal_providers + self._app_signal_providers:
            remaining = max(deadline - time.monotonic(), 0.0)
            try:
                provider.force_flush(int(remaining * 1000))
            except Exception:  # pragma: no cover - a flush must not fail the stop
                pass
        for provider in self._own_signal_providers:
            # shutdown() has no deadline of its own; never let it hold the exit.
            closer = threading.Thread(target=provider.shutdown, daemon=True)
            closer.start()
            closer.join(max(deadline - time.monotonic(), 0.0))
        self._own_signal_providers = []

    def _make_mapper(self) -> Any:
        from torch_otel.mapping import RecordMapper
        from torch_otel.resource import build_resource

        resource = build_resource(
            service_name=self.settings.service_name,
            profile_attributes=self.profile.resource_attributes if self.profile else None,
        )
        return RecordMapper(self.resolver, resource, max_body_bytes=self.settings.max_body_bytes)

    def _make_sinks(self) -> list[Sink]:
        from torch_otel.exporters import ClassifiedExporter, build_exporter

        sinks: list[Sink] = []
        if self.logger_provider is not None:
            sinks.append(ProviderSink(self.logger_provider))
        elif self.profile is not None:
            sinks.extend(ExporterSink(build_exporter(spec)) for spec in self.profile.exporters)
        sinks.extend(
            ExporterSink(ClassifiedExporter(exporter)) for exporter in self._extra_exporters
        )
        return sinks

    def _ignore_thread(self, thread_id: int) -> None:
        self.handler.ignored_thread_ids = frozenset({thread_id})
        if self.trace_handler is not None:
            self.trace_handler.ignored_thread_ids = frozenset({thread_id})

    # -- lifecycle -------------------------------------------------------------------
    def _deadline(self, timeout_s: float | None) -> float:
        return self.settings.flush_timeout_s if timeout_s is None else timeout_s

    def _at_exit(self) -> None:
        snapshot = self.stop()
        if snapshot.records_dropped:
            print(
                f"torch-otel: {snapshot.records_dropped} of "
                f"{snapshot.records_accepted + snapshot.dropped.get('queue_full', 0)} "
                f"compile log records were not exported ({snapshot.describe_drops()})"
                + (f"; last error: {self.last_error}" if self.last_error else ""),
                file=sys.stderr,
                flush=True,
            )

    def _prepare_export(self) -> None:
        """Import and build everything exporting needs (see ExitHooks); idempotent."""
        if not (len(self.buffer) or self.stats.records_accepted):
            return  # nothing was ever logged: nothing to get ready for
        self.pipeline.sinks  # noqa: B018 - builds the exporters
        self._get_encoder()
        import opentelemetry.sdk._logs  # noqa: F401 - the SDK record path, for other sinks

        if self.settings.trace:
            self._get_telemetry()

    def _after_fork_in_child(self) -> None:
        self.buffer.reinit_after_fork()
        self.stats.reset_after_fork()
        self._mapper = None  # new process: new pid in the resource
        self._encoder = None
        self._telemetry = None  # the parent's open spans are the parent's
        self._own_signal_providers = []
        self.handler.ignored_thread_ids = frozenset()
        self.pipeline.reinit_after_fork()

    @staticmethod
    def _application_provider() -> Any:
        """The global LoggerProvider when the application set an SDK one itself."""
        # An application that set a provider has imported the logs API; one that has
        # not cannot have set one. So the common case costs no OTel import here,
        # and the SDK class is recognised by its module, not by importing it.
        logs_api = sys.modules.get("opentelemetry._logs")
        if logs_api is None:
            return None
        provider = logs_api.get_logger_provider()
        module = type(provider).__module__
        return provider if module.startswith("opentelemetry.sdk._logs") else None


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (test runners and notebooks swap it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_DEBUG_HANDLER = _CurrentStderrHandler()


def _enable_debug_output() -> None:
    """``debug=True`` / ``TORCH_OTEL_DEBUG=1``: torch-otel's decisions on stderr."""
    if _DEBUG_HANDLER not in _log.handlers:
        _log.addHandler(_DEBUG_HANDLER)
    _log.setLevel(logging.DEBUG)


def _disable_debug_output() -> None:
    _log.removeHandler(_DEBUG_HANDLER)
    _log.setLevel(logging.NOTSET)


def _trace_id_filter() -> frozenset[str]:
    raw = os.environ.get("TORCH_LOGS_TRACE_ID_FILTER", "")
    return frozenset(item.strip() for item in raw.split(",") if item.strip())


def _environment_rank() -> int | None:
    from torch_otel.attributes import TORCH_DISTRIBUTED_RANK
    from torch_otel.resource import distributed_environment

    return distributed_environment().get(TORCH_DISTRIBUTED_RANK)


def excluded_artifacts(artifact_ranks: Any, rank: int | None) -> frozenset[str]:
    """Artifacts this rank must not export (``artifact_ranks``: artifact -> ranks that do)."""
    if not artifact_ranks:
        return frozenset()
    effective = 0 if rank is None else rank
    return frozenset(name for name, ranks in artifact_ranks.items() if effective not in ranks)


def validate_torch_logs_env(value: str | None = None) -> None:
    """Raise :class:`ConfigError` naming the offending entries if torch rejects ``TORCH_LOGS``."""
    value = os.environ.get("TORCH_LOGS") if value is None else value
    if not value:
        return
    from torch._logging import _internal

    try:
        _internal._parse_log_settings(value)
    except ValueError:
        bad = []
        for item in value.replace(" ", "").split(","):
            if not item:
                continue
            try:
                _internal._parse_log_settings(item)
            except ValueError:
                bad.append(item)
        detail = (
            f"unknown log or artifact name(s): {', '.join(bad)}"
            if bad
            else "not a comma-separated list of names"
        )
        raise ConfigError(
            "TORCH_LOGS",
            f"{value!r} is rejected by torch: {detail} (see TORCH_LOGS=help for the valid names)",
        ) from None
