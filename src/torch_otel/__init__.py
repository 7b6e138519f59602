"""torch-otel: PyTorch compile logs (torch._logging) as OpenTelemetry log records.

``TORCH_LOGS`` and ``torch._logging.set_logs()`` keep deciding *what* torch
logs; torch-otel decides *where it goes*::

    import torch_otel
    torch_otel.install(exporter="otlp-grpc")   # or "console", "file", a YAML path

Only the names in ``__all__`` are public; the subpackages (``capture``,
``export``, ``trace``, ``config``, ``auto``, ``cli``) are internal. Every option
and the attribute contract are in ``docs/reference.md``.
"""

from __future__ import annotations

from torch_otel.errors import ConfigError

__version__ = "0.1.0"

__all__ = [
    "BridgeSettings",
    "ConfigError",
    "StatsSnapshot",
    "TorchOtelBridge",
    "__version__",
    "get_bridge",
    "install",
    "uninstall",
]

# Importing the package must stay cheap: `torch-otel run` puts a bootstrap in
# every Python process of a job, most of which never import torch. The bridge,
# the API functions' implementation and OpenTelemetry load on first use.
_LAZY = {
    "TorchOtelBridge": "torch_otel.bridge",
    "BridgeSettings": "torch_otel.config.settings",
    "StatsSnapshot": "torch_otel.stats",
}


def __getattr__(name):  # type: ignore[no-untyped-def]
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torch_otel' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def install(exporter=None, **options):  # type: ignore[no-untyped-def]
    """Bridge torch's compile logs to OpenTelemetry; idempotent, returns the bridge.

    See :func:`torch_otel._api.install` for the arguments. Raises
    :class:`ConfigError` naming the setting, profile, endpoint or ``TORCH_LOGS``
    value at fault.
    """
    from torch_otel._api import install as _install

    return _install(exporter, **options)


def uninstall(timeout_s=None):  # type: ignore[no-untyped-def]
    """Detach from torch, flush (within ``timeout_s``), restore torch's console output."""
    from torch_otel._api import uninstall as _uninstall

    return _uninstall(timeout_s)


def get_bridge():  # type: ignore[no-untyped-def]
    """The bridge ``install()`` created, if any."""
    from torch_otel._api import get_bridge as _get_bridge

    return _get_bridge()
