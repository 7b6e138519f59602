"""OpenTelemetry auto-instrumentation entry point: ``opentelemetry-instrument python train.py``.

Registered under the ``opentelemetry_instrumentor`` entry point as
``torch_logging``, so:

* ``opentelemetry-instrument`` (with a distro such as ``opentelemetry-distro``
  configuring the SDK from ``OTEL_*`` variables) bridges torch's compile logs
  into the LoggerProvider the user configured the usual OTel way;
* ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=torch_logging`` turns it off.

The bridge never replaces a provider it did not create: with an SDK
LoggerProvider set globally it emits into it; without one it falls back to the
torch-otel profile from ``TORCH_OTEL_EXPORTER`` (default ``otlp-grpc``).
Installation waits for ``import torch`` so that instrumenting a process that
never uses torch costs nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

_INSTRUMENTS = ("torch >= 2.6",)


class TorchLoggingInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Installs the torch-otel bridge; ``uninstrument()`` removes it."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        from torch_otel.auto.autoinstall import install_when_torch_imported

        install_when_torch_imported(**kwargs)

    def _uninstrument(self, **kwargs: Any) -> None:
        import torch_otel

        torch_otel.uninstall()
