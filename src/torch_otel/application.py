"""What the process already has before the bridge starts: the torch it runs, and any
OpenTelemetry providers the application set up itself.

The providers are found without importing OpenTelemetry: an application that set one
has imported the API already, and the SDK classes are recognised by their module. So a
job that never uses OpenTelemetry pays no import for the check.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

from torch_otel.capture import _torch

_log = logging.getLogger("torch_otel")


@functools.cache
def torch_is_usable() -> bool:
    """Say once per process what this torch lacks; False if nothing can be bridged."""
    support = _torch.support()
    warning = support.warning()
    if warning is not None:
        _log.warning("%s", warning)
    return support.can_bridge


def application_logger_provider() -> Any:
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


def application_meter_provider() -> Any:
    """The global MeterProvider when the application set an SDK one (no import otherwise)."""
    metrics_api = sys.modules.get("opentelemetry.metrics")
    if metrics_api is None:
        return None
    provider = metrics_api.get_meter_provider()
    module = type(provider).__module__
    return provider if module.startswith("opentelemetry.sdk.metrics") else None
