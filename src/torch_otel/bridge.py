"""The bridge: one object that owns every piece, so a test can build two.

``TorchOtelBridge`` wires the capture side (resolver, handler, bounded buffer,
registry sync), the export side (request builder, sinks, export thread), the
``--trace`` side (trace handler, compile telemetry) and the process lifecycle
hooks. Nothing here is module-global; ``torch_otel.install()`` merely keeps one
default bridge. Read it top to bottom to follow one record: torch logger ->
:class:`~torch_otel.capture.handler.BridgeHandler` ->
:class:`~torch_otel.capture.buffer.RecordBuffer` ->
:class:`~torch_otel.export.pipeline.ExportPipeline` ->
:class:`~torch_otel.export.requests.RequestBuilder` -> a
:class:`~torch_otel.export.sink.Sink`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch_otel import debug_output
from torch_otel import environment_variables as env
from torch_otel.application import (
    application_logger_provider,
    application_meter_provider,
    torch_is_usable,
)
from torch_otel.capture import _torch
from torch_otel.capture.buffer import RecordBuffer
from torch_otel.capture.components import ComponentResolver
from torch_otel.capture.handler import BridgeHandler, parse_trace_id_filter
from torch_otel.capture.records import CapturedRecord
from torch_otel.capture.sync import (
    TorchLoggingSync,
    validate_artifact_names,
    validate_torch_logs,
)
from torch_otel.config.profiles import BatchSettings, Profile, default_profile_name, load_profile
from torch_otel.config.resource import distributed_environment, missing_job_attributes
from torch_otel.config.settings import DEDUP_STORE_TIMEOUT_S, BridgeSettings
from torch_otel.config.specs import OTLP_KINDS, warn_if_unencrypted
from torch_otel.export.files import OutputFiles
from torch_otel.export.pipeline import ExportPipeline, PipelineSettings
from torch_otel.export.requests import RequestBuilder
from torch_otel.export.sink import ExporterSink, ProviderSink, Sink
from torch_otel.import_watch import run_after_import
from torch_otel.lifecycle import ExitCallbacks, ExitHooks
from torch_otel.names import TORCH_DISTRIBUTED_RANK
from torch_otel.stats import BridgeStats, StatsSnapshot, exit_line

_log = logging.getLogger("torch_otel")


class TorchOtelBridge:
    """Bridges torch's compile logs into OpenTelemetry. Build, ``start()``, ``stop()``.

    Args:
        settings: validated :class:`~torch_otel.config.settings.BridgeSettings`.
        exporters: extra SDK ``LogRecordExporter`` objects to send to as well
            (tests and the demo add an in-memory one).
        logger_provider: an SDK ``LoggerProvider`` to emit into instead of
            building a pipeline from a profile. By default the application's
            global provider is used when it is an SDK one and no profile was
            chosen explicitly.
        environ: the environment profiles and launcher variables are read from
            (default: this process's).
    """

    def __init__(
        self,
        settings: BridgeSettings,
        *,
        exporters: Sequence[Any] = (),
        logger_provider: Any = None,
        environ: Any = None,
    ) -> None:
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self.stats = BridgeStats()
        self._extra_exporters = list(exporters)
        self._started = False
        if settings.debug:
            debug_output.enable()
        self.logger_provider, self.profile = self._choose_destination(logger_provider)
        batch = self.profile.batch if self.profile else BatchSettings(schedule_delay_s=0.2)
        self.files = OutputFiles()
        self.resolver = ComponentResolver()
        self.buffer: RecordBuffer[CapturedRecord] = RecordBuffer.with_high_water(
            max_records=settings.max_queue_records or batch.max_queue_records,
            max_bytes=settings.max_queue_bytes,
            max_batch_bytes=settings.max_batch_bytes,
            stats=self.stats,
            # Past half its bounds the buffer is exported without waiting for a pause in
            # torch's logging; with a spill directory (cheap disk writes) past an eighth.
            fraction=8 if settings.spill_dir else 2,
        )
        self.rank_reader = _torch.DistributedRankReader()
        self.handler = BridgeHandler(
            self.buffer,
            trace_id_filter=parse_trace_id_filter(self.environ.get(env.TORCH_LOGS_TRACE_ID_FILTER)),
            rank_reader=self.rank_reader,
        )
        self.claims: Any = None
        if settings.dedup:
            from torch_otel.export.dedup import StoreClaims, job_scope

            self.claims = StoreClaims(
                self._job_store,
                scope=job_scope(distributed_environment(self.environ)),
                timeout_s=DEDUP_STORE_TIMEOUT_S,
                stats=self.stats,
            )
        self.requests = RequestBuilder(
            self._make_mapper,
            max_batch_records=batch.max_batch_records,
            max_batch_bytes=settings.max_batch_bytes,
        )
        self.pipeline = ExportPipeline(
            self.buffer,
            encode=self.requests.build,
            make_sinks=self._make_sinks,
            stats=self.stats,
            settings=PipelineSettings(
                schedule_delay_s=batch.schedule_delay_s,
                max_batch_records=batch.max_batch_records,
                max_batch_bytes=settings.max_batch_bytes,
            ),
            on_thread_start=self._ignore_thread,
            observe=self._observe if settings.trace else None,
            spill=self._make_spill(),
        )
        self._telemetry: Any = None
        self._providers: Any = None
        self._providers_lock = threading.Lock()
        self.health: Any = None
        """Compile health (``trace/health.py``), once started with a meter provider."""
        self._compile_hooks: Any = None
        self.trace_handler: Any = None
        if settings.trace:
            from torch_otel.trace.handler import TraceHandler

            self.trace_handler = TraceHandler(self.buffer, rank_reader=self.rank_reader)
        self.sync = TorchLoggingSync(
            self.handler, self.resolver, console=settings.console, trace_handler=self.trace_handler
        )
        self._hooks = ExitHooks(
            ExitCallbacks(
                on_exit=self._at_exit,
                on_fork_child=self._after_fork_in_child,
                on_prepare_exit=self._prepare_export,
                on_exit_interrupted=self._at_exit_interrupted,
            )
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
        if not torch_is_usable():
            return self
        validate_torch_logs(self.environ.get(env.TORCH_LOGS))
        validate_artifact_names(self.settings.artifact_ranks, self.settings.artifact_ranks_source)
        rank = distributed_environment(self.environ).get(TORCH_DISTRIBUTED_RANK)
        if not self.settings.exports_on_rank(rank):
            _log.debug(
                "torch-otel: rank %s is not in ranks %s; not exporting", rank, self.settings.ranks
            )
            return self
        excluded = self.settings.excluded_artifacts(rank)
        if excluded:
            self.handler.exclude_artifacts(excluded, self.resolver)
        if not self.exports_anything:
            _log.debug("torch-otel: no log exporter configured; not attaching to torch's loggers")
            return self
        if self.pipeline.spill is not None and not self.pipeline.spill.open():
            self.pipeline.spill = None  # said once why; memory only from here on
        self.pipeline.start()
        self.sync.start()
        self._hooks.install()
        self._started = True
        self._start_compile_health(rank)
        return self

    def stop(self, timeout_s: float | None = None) -> StatsSnapshot:
        """Detach, flush within the deadline, shut exporters down; returns final counts."""
        if self._started:
            self._started = False
            self._hooks.uninstall()
            self.sync.stop()
            deadline = time.monotonic() + self._deadline(timeout_s)
            self._stop_compile_health()
            self.pipeline.shutdown(self._deadline(timeout_s))
            self._close_telemetry(max(deadline - time.monotonic(), 0.5))
            if self.pipeline.spill is not None:
                self.pipeline.spill.close()  # what is left stays on disk, for the next sender
        if self.settings.debug:
            debug_output.disable()
        return self.stats.snapshot()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Export everything queued so far; ``False`` if the deadline passed first."""
        if self.health is not None:
            self.health.process_pending()
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

    # -- construction ----------------------------------------------------------------
    def _choose_destination(self, logger_provider: Any) -> tuple[Any, Profile | None]:
        """The application's provider unless a profile was chosen explicitly."""
        if logger_provider is None and not self.settings.exporter_from_user:
            logger_provider = application_logger_provider()
        if logger_provider is not None:
            _log.debug("torch-otel: using the application's LoggerProvider %r", logger_provider)
            return logger_provider, None
        profile = load_profile(
            self.settings.exporter or default_profile_name(self.environ),
            environ=self.environ,
            output=self.settings.output,
            announce=True,
        )
        _log.debug("torch-otel: %s", profile.describe())
        for spec in profile.exporters:
            warn_if_unencrypted(spec)
        return None, profile

    def _make_spill(self) -> Any:
        """The spill directory's queue, for the OTLP exporters (None: memory only)."""
        specs = self.profile.exporters if self.profile else []
        if self.settings.spill_dir is None or not any(s.kind in OTLP_KINDS for s in specs):
            return None  # (a spill directory without OTLP exporters has nothing to keep)
        from torch_otel.export.spill_queue import SpillQueue

        return SpillQueue(Path(self.settings.spill_dir), self.settings.spill_max_bytes, self.stats)

    # -- export-thread side ----------------------------------------------------------
    def _make_mapper(self) -> Any:
        from torch_otel.config.resource import build_resource
        from torch_otel.export.mapping import RecordMapper

        resource = build_resource(
            service_name=self.settings.service_name,
            profile_attributes=self.profile.resource_attributes if self.profile else None,
        )
        mapper = RecordMapper(
            self.resolver,
            resource,
            max_body_bytes=self.settings.max_body_bytes,
            claims=self.claims,
            dedup_min_bytes=self.settings.dedup_min_bytes,
            job_attributes=missing_job_attributes(self.logger_provider, self.environ),
        )
        if self._telemetry is not None:
            mapper.span_lookup = self._telemetry.span_context_for
        return mapper

    def _job_store(self) -> Any:
        """The default group's store now, else the last one the compile thread saw."""
        store = _torch.default_group_store()
        return store if store is not None else self.rank_reader.store

    def _make_sinks(self) -> list[Sink]:
        from torch_otel.export.exporters import build_log_sink

        sinks: list[Sink] = []
        if self.logger_provider is not None:
            sinks.append(ProviderSink(self.logger_provider))
        elif self.profile is not None:
            sinks.extend(build_log_sink(spec, self.files) for spec in self.profile.exporters)
        sinks.extend(ExporterSink(exporter) for exporter in self._extra_exporters)
        return sinks

    def _get_providers(self) -> Any:
        """The tracer and meter providers (the profile's, else the application's)."""
        with self._providers_lock:
            if self._providers is None:
                from torch_otel.config.resource import build_resource
                from torch_otel.export.providers import SignalProviders

                resource = build_resource(
                    service_name=self.settings.service_name,
                    profile_attributes=self.profile.resource_attributes if self.profile else None,
                )
                self._providers = SignalProviders(self.profile, resource, self.files)
            return self._providers

    def _get_telemetry(self) -> Any:
        if self._telemetry is None:
            from torch_otel import __version__
            from torch_otel.names import INSTRUMENTATION_NAME
            from torch_otel.trace.telemetry import CompileTelemetry

            providers = self._get_providers()
            self._telemetry = CompileTelemetry(
                providers.tracer(INSTRUMENTATION_NAME, __version__),
                providers.meter(INSTRUMENTATION_NAME, __version__),
                compile_metrics=self.health is None,  # else compile health owns them
            )
            self.requests.mapper.span_lookup = self._telemetry.span_context_for
        return self._telemetry

    # -- compile health ----------------------------------------------------------------
    def _start_compile_health(self, rank: int | None) -> None:
        """Compile metrics and slow-compile events, when there is a meter provider; set up
        once ``torch._dynamo`` is imported (a process that never compiles pays nothing)."""
        if self.settings.compile_metrics and self._has_meter_provider():
            run_after_import(_torch.DYNAMO_MODULE, lambda: self._begin_compile_health(rank))

    def _begin_compile_health(self, rank: int | None) -> None:
        if not self._started or self.health is not None:
            return
        from torch_otel.trace.health_session import start_compile_health

        self.health, self._compile_hooks = start_compile_health(
            meter=self._health_meter,
            emit_record=self.buffer.offer,  # also while stopping: before the last flush
            slow_compile_s=self.settings.slow_compile_s,
            fallback_rank=rank,
        )

    def _has_meter_provider(self) -> bool:
        if self.profile is not None:
            return bool(self.profile.metric_exporters)
        return application_meter_provider() is not None

    def _health_meter(self) -> Any:
        from torch_otel import __version__
        from torch_otel.names import INSTRUMENTATION_NAME

        return self._get_providers().meter(INSTRUMENTATION_NAME, __version__)

    def _stop_compile_health(self) -> None:
        if self.health is not None:
            from torch_otel.trace.health_session import stop_compile_health

            stop_compile_health(self.health, self._compile_hooks)

    def _observe(self, captured: list[CapturedRecord]) -> None:
        """Compile spans and metrics (``--trace``), advanced batch by batch."""
        self._get_telemetry().observe(captured)

    def _close_telemetry(self, timeout_s: float) -> None:
        """End open spans, flush spans and metrics, shut down only our own providers."""
        if self._telemetry is not None:
            self._telemetry.close()
        if self._providers is not None:
            self._providers.close(timeout_s)

    def _ignore_thread(self, thread_id: int) -> None:
        self.handler.ignored_thread_ids = frozenset({thread_id})
        if self.trace_handler is not None:
            self.trace_handler.ignored_thread_ids = frozenset({thread_id})

    # -- lifecycle -------------------------------------------------------------------
    def _deadline(self, timeout_s: float | None) -> float:
        return self.settings.flush_timeout_s if timeout_s is None else timeout_s

    def _at_exit(self) -> None:
        """The exit flush. The handler stays on torch's loggers: records logged while it
        runs still go out, and any logged after it closed are counted (``after_shutdown``)."""
        if self._started:
            self._started = False
            self._hooks.uninstall()
            deadline = time.monotonic() + self.settings.flush_timeout_s
            self._stop_compile_health()
            self.pipeline.shutdown(self.settings.flush_timeout_s)
            self._close_telemetry(max(deadline - time.monotonic(), 0.5))
        self._report()

    def _at_exit_interrupted(self, signum: int) -> None:
        """A signal ended the exit flush early: count what is left, still report."""
        self.pipeline.abandon()
        self._report(interrupted_by=signal.Signals(signum).name)

    def _report(self, interrupted_by: str | None = None) -> None:
        spill = self.pipeline.spill
        left = spill.pending_records() if spill is not None else 0
        if spill is not None:
            spill.close()
        line = exit_line(
            self.stats.snapshot(),
            self.last_error,
            interrupted_by,
            left_on_disk=left,
            spill_directory=str(spill.directory) if spill is not None else None,
        )
        if line is not None:
            print(line, file=sys.stderr, flush=True)

    def _prepare_export(self) -> None:
        """Import and build everything exporting needs (see ExitHooks); idempotent."""
        if self.health is not None:
            self.health.prepare()  # compiles without any log record still have metrics
        if not (len(self.buffer) or self.stats.records_accepted):
            return  # nothing was ever logged: nothing to get ready for
        self.pipeline.sinks  # noqa: B018 - builds the exporters
        self.requests.encoder  # noqa: B018 - builds the mapper, resource and encoder
        import opentelemetry.sdk._logs  # noqa: F401 - the SDK record path, for other sinks

        if self.settings.trace:
            self._get_telemetry()
        if self.claims is not None:
            self.claims.ready()

    def _after_fork_in_child(self) -> None:
        self.buffer.reinit_after_fork()
        self.stats.reset_after_fork()
        self.files.forget_after_fork()
        self.requests.reset()  # new process: new pid in the resource
        if self.pipeline.spill is not None:
            self.pipeline.spill.reset_after_fork()
        if self.claims is not None:
            self.claims.reinit_after_fork()
        self._telemetry = None  # the parent's open spans are the parent's
        self._providers = None
        self._providers_lock = threading.Lock()
        self.handler.ignored_thread_ids = frozenset()
        self.pipeline.reinit_after_fork()
        if self.health is not None:
            self.health.reinit_after_fork()
