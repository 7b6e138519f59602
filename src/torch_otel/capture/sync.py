"""Keeping the bridge handler on exactly the loggers torch prints through.

torch re-initialises its logging in ``torch._logging._internal._init_logs``
on import and on every ``set_logs()`` call: it resets levels and
``propagate`` flags, removes the handlers it created itself, and adds a fresh
stderr ``StreamHandler`` to every *registered* logger (``propagate = False``
on each, so a record is printed by exactly one of them). A foreign handler on
those loggers survives, but a logger registered later (``TORCH_LOGS="+a.mod"``,
``register_log``) has none.

So the bridge mirrors torch: after every ``_init_logs`` it puts its handler on
every registered logger, at the level torch gives its own handler. It never
changes a level or a ``propagate`` flag, which is what makes the exported set
equal to the printed set, each record once.

The hook on ``_init_logs`` is the one process-global thing here (torch's
logging state is process-global); :class:`InitLogsHook` wraps the function
once and fans out to any number of :class:`TorchLoggingSync` subscribers, so
two bridges can coexist in a test.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from torch_otel import environment_variables as env
from torch_otel.capture import _torch
from torch_otel.capture.components import ComponentResolver
from torch_otel.errors import ConfigError

TRACE_LOGGER_NAME = _torch.TRACE_LOGGER_NAME

# Loggers of the export stack itself. Even if TORCH_LOGS names them (making them
# registered torch loggers), the bridge never attaches there: exporting the
# exporter's own complaints about a dead collector would feed back forever.
EXPORT_STACK_PREFIXES: tuple[str, ...] = (
    "opentelemetry",
    "grpc",
    "urllib3",
    "requests",
    "google",
    "torch_otel",
)


def is_export_stack_logger(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in EXPORT_STACK_PREFIXES)


class InitLogsHook:
    """Wraps torch's ``_init_logs`` so subscribers run after every re-initialisation."""

    _instance: InitLogsHook | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._subscribers: list[weakref.ref[TorchLoggingSync]] = []
        self._original: Callable[..., Any] | None = None

    @classmethod
    def shared(cls) -> InitLogsHook:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def subscribe(self, sync: TorchLoggingSync) -> None:
        self._install()
        self._subscribers = [ref for ref in self._subscribers if ref() is not None]
        self._subscribers.append(weakref.ref(sync))

    def unsubscribe(self, sync: TorchLoggingSync) -> None:
        self._subscribers = [
            ref for ref in self._subscribers if ref() is not None and ref() is not sync
        ]
        if not self._subscribers:
            self._uninstall()

    def _install(self) -> None:
        if self._original is not None:
            return
        original = _torch.init_logs_function()
        if original is None:
            return  # this torch has no _init_logs: attach once, without re-syncing
        hook = self

        @functools.wraps(original)
        def _init_logs_with_bridge(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            hook.notify()
            return result

        _init_logs_with_bridge.__torch_otel_original__ = original  # type: ignore[attr-defined]
        self._original = original
        _torch.replace_init_logs(_init_logs_with_bridge)

    def _uninstall(self) -> None:
        if self._original is None:
            return
        _torch.replace_init_logs(self._original)
        self._original = None

    def notify(self) -> None:
        for ref in list(self._subscribers):
            sync = ref()
            if sync is not None:
                sync.sync()


class TorchLoggingSync:
    """Attaches one handler to every logger torch prints through, and keeps it there.

    ``console=False`` additionally removes torch's own stderr handlers after
    each re-initialisation (files from ``TORCH_LOGS_OUT`` are kept).
    ``trace_handler``, when given, is attached to torch's structured-trace
    logger ``torch.__trace`` (which makes torch build its trace records).
    """

    def __init__(
        self,
        handler: logging.Handler,
        resolver: ComponentResolver,
        *,
        console: bool = True,
        trace_handler: logging.Handler | None = None,
    ) -> None:
        self.handler = handler
        self.resolver = resolver
        self.console = console
        self.trace_handler = trace_handler
        self._attached: dict[str, logging.Logger] = {}
        self._removed_console: list[tuple[logging.Logger, logging.Handler]] = []
        self._active = False
        self.listeners: list[Callable[[], None]] = []
        """Called after each sync (e.g. to refresh rank filters)."""

    @property
    def attached_logger_names(self) -> list[str]:
        return sorted(self._attached)

    def start(self) -> None:
        self._active = True
        InitLogsHook.shared().subscribe(self)
        self.sync()

    def stop(self) -> None:
        """Detach everywhere and give torch back its console handlers."""
        self._active = False
        InitLogsHook.shared().unsubscribe(self)
        for logger in self._attached.values():
            logger.removeHandler(self.handler)
        self._attached.clear()
        if self.trace_handler is not None:
            logging.getLogger(TRACE_LOGGER_NAME).removeHandler(self.trace_handler)
        for logger, console_handler in self._removed_console:
            if console_handler not in logger.handlers and _torch.is_torch_handler(console_handler):
                logger.addHandler(console_handler)
        self._removed_console.clear()

    def sync(self) -> None:
        """Bring the handler set in line with torch's registry (idempotent)."""
        if not self._active:
            return
        self.resolver.refresh()
        for name in self.resolver.registered_logger_names():
            if is_export_stack_logger(name) or name in self._attached:
                continue
            logger = logging.getLogger(name)
            if self.handler not in logger.handlers:
                logger.addHandler(self.handler)
            self._attached[name] = logger
        if not self.console:
            self._remove_torch_console_handlers()
        if self.trace_handler is not None:
            _put_first(logging.getLogger(TRACE_LOGGER_NAME), self.trace_handler)
        for listener in self.listeners:
            listener()

    def _remove_torch_console_handlers(self) -> None:
        removed = []
        for logger in self._attached.values():
            for handler in list(logger.handlers):
                if _torch.is_torch_stderr_handler(handler):
                    logger.removeHandler(handler)
                    removed.append((logger, handler))
        if removed:
            # Each re-initialisation makes a new generation of torch handlers;
            # only the latest one is worth restoring at stop().
            self._removed_console = removed


def _put_first(logger: logging.Logger, handler: logging.Handler) -> None:
    """Attach ``handler`` ahead of the others.

    torch's ``LazyTraceHandler`` removes itself from ``torch.__trace`` on its first
    record when no ``TORCH_TRACE`` directory is set, *while* ``callHandlers`` is
    iterating the handler list: the handler after it misses that record (the
    first ``dynamo`` event of the run). Going first avoids that.
    """
    if logger.handlers[:1] == [handler]:
        return
    logger.addHandler(handler)  # takes logging's lock; then move it to the front
    handlers = [handler] + [h for h in logger.handlers if h is not handler]
    logger.handlers = handlers


def validate_torch_logs(value: str | None) -> None:
    """Raise :class:`ConfigError` naming the entries torch rejects in ``TORCH_LOGS``."""
    if not value:
        return
    bad = _torch.rejected_log_settings(value)
    if bad is None:
        return
    detail = (
        f"unknown log or artifact name(s): {', '.join(bad)}"
        if bad
        else "not a comma-separated list of names"
    )
    raise ConfigError(
        env.TORCH_LOGS,
        f"{value!r} is rejected by torch: {detail} (see TORCH_LOGS=help for the valid names)",
    )


def validate_artifact_names(artifacts: Iterable[str], setting: str) -> None:
    """Raise :class:`ConfigError` for artifact names torch does not know (a typo filters
    nothing and would go unnoticed)."""
    known = set(_torch.log_registry().artifact_names)
    unknown = sorted(set(artifacts) - known)
    if unknown:
        raise ConfigError(
            setting,
            f"unknown artifact name(s): {', '.join(unknown)} "
            "(see TORCH_LOGS=help for the artifacts this torch knows)",
        )
