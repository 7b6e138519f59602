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
    return _sdk_global("opentelemetry._logs", "get_logger_provider", "opentelemetry.sdk._logs")


def application_meter_provider() -> Any:
    """The global MeterProvider when the application set an SDK one itself."""
    return _sdk_global("opentelemetry.metrics", "get_meter_provider", "opentelemetry.sdk.metrics")


def _sdk_global(api_module: str, getter: str, sdk_prefix: str) -> Any:
    """An application that set a provider has imported the API; one that has not cannot
    have set one. So the common case imports nothing, and the SDK class is recognised
    by its module, not by importing it."""
    api = sys.modules.get(api_module)
    if api is None:
        return None
    provider = getattr(api, getter)()
    return provider if type(provider).__module__.startswith(sdk_prefix) else None
