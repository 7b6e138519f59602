"""Tracer and meter providers for compile spans and metrics.

Like the log side, torch-otel never replaces a provider it did not create: if
the application set SDK providers globally and no profile was chosen
explicitly, spans and metrics go there. Otherwise they are built from the
profile's ``tracer_provider`` / ``meter_provider`` sections with the exporters
of ``exporters.py``, and shut down by the bridge.
"""

from __future__ import annotations

import os
import random
from typing import Any

from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from torch_otel.config.specs import ExporterSpec
from torch_otel.export.exporters import build_signal_exporter
from torch_otel.export.files import OutputFiles


def application_tracer_provider() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    provider = trace.get_tracer_provider()
    return provider if isinstance(provider, TracerProvider) else None


def application_meter_provider() -> Any:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider

    provider = metrics.get_meter_provider()
    return provider if isinstance(provider, MeterProvider) else None


class PrivateRandomIdGenerator(RandomIdGenerator):
    """Span and trace ids from a private RNG, not the ``random`` module's global state.

    The SDK's default generator draws from ``random``; dynamo saves and restores
    that global state around tracing (so user code sees the RNG it expects), which
    replays the same "random" ids for spans started in between.
    """

    def __init__(self) -> None:
        self._random = random.Random(os.urandom(32))

    def generate_span_id(self) -> int:
        span_id = self._random.getrandbits(64)
        while span_id == 0:
            span_id = self._random.getrandbits(64)
        return span_id

    def generate_trace_id(self) -> int:
        trace_id = self._random.getrandbits(128)
        while trace_id == 0:
            trace_id = self._random.getrandbits(128)
        return trace_id


def build_tracer_provider(specs: list[ExporterSpec], resource: Any, files: OutputFiles) -> Any:
    if not specs:
        return None
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # shutdown_on_exit=False: the bridge flushes spans at exit itself, after the last
    # records; the SDK's own atexit hook would run first and drop the final spans.
    provider = TracerProvider(
        resource=resource, shutdown_on_exit=False, id_generator=PrivateRandomIdGenerator()
    )
    for spec in specs:
        provider.add_span_processor(BatchSpanProcessor(build_signal_exporter("spans", spec, files)))
    return provider


def build_meter_provider(
    specs: list[tuple[ExporterSpec, float]], resource: Any, files: OutputFiles
) -> Any:
    if not specs:
        return None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    readers = [
        PeriodicExportingMetricReader(
            build_signal_exporter("metrics", spec, files), export_interval_millis=interval_s * 1000
        )
        for spec, interval_s in specs
    ]
    return MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)


class SignalProviders:
    """The tracer and meter providers compile telemetry goes to, and which are ours.

    With a profile, each is built from its ``tracer_provider`` / ``meter_provider``
    section on first use (compile health needs only metrics; spans only come with
    ``--trace``, so a job without it never starts a span processor) and shut down by
    :meth:`close`; without one (the application's own OpenTelemetry setup), the
    application's global SDK providers are used and only flushed.
    """

    def __init__(self, profile: Any, resource: Any, files: OutputFiles) -> None:
        self._profile = profile
        self._resource = resource
        self._files = files
        self._owned = profile is not None
        self._built: dict[str, Any] = {}

    @property
    def tracer_provider(self) -> Any:
        return self._provider("span_exporters", build_tracer_provider, application_tracer_provider)

    @property
    def meter_provider(self) -> Any:
        return self._provider("metric_exporters", build_meter_provider, application_meter_provider)

    def _provider(self, specs: str, build: Any, application: Any) -> Any:
        """Built from the profile's ``specs`` on first use; else the application's."""
        if specs not in self._built:
            self._built[specs] = (
                build(getattr(self._profile, specs), self._resource, self._files)
                if self._owned
                else application()
            )
        return self._built[specs]

    def tracer(self, name: str, version: str) -> Any:
        provider = self.tracer_provider
        return provider.get_tracer(name, version) if provider is not None else None

    def meter(self, name: str, version: str) -> Any:
        provider = self.meter_provider
        return provider.get_meter(name, version) if provider is not None else None

    def close(self, timeout_s: float) -> None:
        """Flush spans and metrics; shut down the providers only if they are ours."""
        import threading
        import time

        deadline = time.monotonic() + timeout_s
        providers = [p for p in self._built.values() if p is not None]
        for provider in providers:
            remaining = max(deadline - time.monotonic(), 0.0)
            try:
                provider.force_flush(int(remaining * 1000))
            except Exception:  # pragma: no cover - a flush must not fail the stop
                pass
        if not self._owned:
            return
        for provider in providers:
            # shutdown() has no deadline of its own; never let it hold the exit.
            closer = threading.Thread(target=provider.shutdown, daemon=True)
            closer.start()
            closer.join(max(deadline - time.monotonic(), 0.0))
        self._built = {}
