"""The bridge handler: the only torch-otel code that runs on the compile thread.

It does the minimum that has to happen there and nothing else:

1. render the message (torch passes lazy objects, e.g. ``LazyString`` or
   guard managers, whose state changes after the call returns);
2. read the current compile id (a thread-local torch maintains);
3. copy the handful of plain fields the exporter needs out of the
   ``logging.LogRecord`` (so no reference to torch objects outlives the call);
4. hand the tuple to the bounded :class:`~torch_otel.buffer.RecordBuffer`.

Everything else (component lookup, attributes, OTel record construction,
chunking, encoding) happens on the export thread. ``handle`` is overridden
rather than ``emit`` so that the per-handler lock ``logging.Handler.handle``
takes is skipped: the buffer has its own, much shorter, critical section.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple

from torch_otel.buffer import RecordBuffer


class CapturedException(NamedTuple):
    """Exception details rendered on the emitting thread (traceback frames die with it)."""

    type_name: str
    message: str
    stacktrace: str


class CapturedRecord(NamedTuple):
    """Plain-data copy of a ``logging.LogRecord``, safe to keep after the call."""

    logger_name: str
    levelno: int
    created: float
    message: str
    pathname: str
    lineno: int
    func_name: str | None
    thread_id: int | None
    thread_name: str | None
    compile_id: Any  # torch._guards.CompileId or None
    attempt: int | None
    exception: CapturedException | None
    stack_info: str | None
    render_error: str | None
    rank: int | None
    metadata: dict[str, Any] | None = None  # structured trace records only


def _new_captured(*fields: Any) -> CapturedRecord:
    return tuple.__new__(CapturedRecord, fields)


def compile_context_reader() -> Callable[[], Any]:
    """Return a zero-argument function giving torch's current ``CompileContext`` or None.

    Reads torch's thread-local directly when it is there (about 4x cheaper than
    ``CompileContext.current_trace_id()``, which builds a ``TraceId`` every
    call); falls back to the public API on torch versions without it.
    """
    try:
        from torch._guards import _TLS  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - depends on torch version
        _TLS = None
    if _TLS is not None:

        def read_tls() -> Any:
            return getattr(_TLS, "compile_context", None)

        return read_tls
    from torch._guards import CompileContext  # pragma: no cover

    return CompileContext.try_get  # pragma: no cover


class DistributedRankReader:
    """The global rank while ``torch.distributed`` is initialised, read cheaply per record.

    Read on the compile thread because a job may tear its process group down
    before the export thread maps the record. ``get_rank()`` is only called when
    the default process group object changes; otherwise this is two attribute
    loads and an identity check.
    """

    __slots__ = ("_c10d", "_group", "_rank")

    def __init__(self) -> None:
        self._c10d: Any = None
        self._group: Any = None
        self._rank: int | None = None

    def __call__(self) -> int | None:
        c10d = self._c10d
        if c10d is None:
            c10d = self._c10d = sys.modules.get("torch.distributed.distributed_c10d")
            if c10d is None:
                return None
        group = c10d.GroupMember.WORLD
        if group is None:
            return None
        if group is not self._group:
            try:
                self._rank = int(c10d.get_rank())
            except Exception:
                self._rank = None
            self._group = group
        return self._rank


class BridgeHandler(logging.Handler):
    """Captures records torch lets through and queues them for export.

    Attached by :class:`~torch_otel.torch_logging.TorchLoggingSync` to exactly
    the loggers torch attaches its own stderr handler to, at the same level
    (``DEBUG``), so the set of records exported is the set torch prints.
    """

    def __init__(
        self,
        buffer: RecordBuffer[CapturedRecord],
        *,
        trace_id_filter: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(level=logging.DEBUG)
        self._buffer = buffer
        self._read_compile_context = compile_context_reader()
        self._read_rank = DistributedRankReader()
        self._trace_id_filter = trace_id_filter
        self.ignored_thread_ids: frozenset[int] = frozenset()
        """Threads whose records are never bridged (the export thread: no feedback loops)."""
        self._excluded_artifacts: frozenset[str] = frozenset()
        self._skip_by_logger: dict[str, bool] = {}
        self._artifact_of: Callable[[str], str | None] | None = None

    def exclude_artifacts(self, artifacts: frozenset[str], resolver: Any) -> None:
        """Skip records of these artifacts (per-rank filtering, e.g. output_code on rank 0 only)."""
        self._excluded_artifacts = frozenset(artifacts)
        self._skip_by_logger = {}
        self._artifact_of = lambda name: resolver.resolve(name).artifact

    def _is_excluded(self, logger_name: str) -> bool:
        skip = self._skip_by_logger.get(logger_name)
        if skip is None:
            artifact = self._artifact_of(logger_name) if self._artifact_of else None
            skip = self._skip_by_logger[logger_name] = artifact in self._excluded_artifacts
        return skip

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        if record.thread in self.ignored_thread_ids:
            return False
        if self.filters and not self.filter(record):
            return False
        if self._excluded_artifacts and self._is_excluded(record.name):
            return False
        try:
            message = record.getMessage()
            render_error = None
        except Exception as error:  # torch's lazy arguments may raise in __str__
            message, render_error = render_with_markers(record, error)
        context = self._read_compile_context()
        if context is not None:
            compile_id = context.compile_id
            attempt = context.attempt
        else:
            compile_id = attempt = None
        if self._trace_id_filter and not _passes_trace_id_filter(
            compile_id, attempt, self._trace_id_filter
        ):
            return False
        if record.exc_info or record.exc_text:
            exception = capture_exception(record)
        else:
            exception = None
        self._buffer.offer(
            _new_captured(
                record.name,
                record.levelno,
                record.created,
                message,
                record.pathname,
                record.lineno,
                record.funcName,
                record.thread,
                record.threadName,
                compile_id,
                attempt,
                exception,
                record.stack_info,
                render_error,
                self._read_rank(),
                None,
            ),
            len(message),
        )
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (torch-otel)>"


def capture_exception(record: logging.LogRecord) -> CapturedException | None:
    """Render ``record.exc_info`` (or a pre-rendered ``exc_text``) into plain strings."""
    try:
        if record.exc_info and record.exc_info is not True:
            exc_type, exc_value, exc_tb = record.exc_info
            if exc_type is None:
                return None
            type_name = qualified_name(exc_type)
            message = safe_str(exc_value) if exc_value is not None else ""
            stacktrace = "".join(traceback.format_exception(exc_type, exc_value, exc_tb))
            return CapturedException(type_name, message, stacktrace)
        if record.exc_text:
            return CapturedException("", "", str(record.exc_text))
    except Exception as error:  # pragma: no cover - defensive, formatting never raises in practice
        return CapturedException("", f"<torch-otel: could not render exception: {error!r}>", "")
    return None


def qualified_name(cls: type) -> str:
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", getattr(cls, "__name__", repr(cls)))
    return name if module in (None, "builtins") else f"{module}.{name}"


def safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception as error:
        return unrenderable_marker(value, error)


def unrenderable_marker(value: object, error: BaseException) -> str:
    return f"<torch-otel: unrenderable {type(value).__name__}: {type(error).__name__}: {error}>"


class _Marker:
    """Stands in for an argument whose ``__str__``/``__repr__`` raised."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __str__(self) -> str:
        return self._text

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return self._text


def render_with_markers(record: logging.LogRecord, error: BaseException) -> tuple[str, str]:
    """Render a message whose arguments raised, replacing only the failing ones.

    Returns the body and a short description of what went wrong (exported as
    ``torch_otel.render_error``), so the record still arrives and says why it
    is incomplete.
    """
    description = f"{type(error).__name__}: {error}"
    template = safe_str(record.msg)
    args = record.args
    try:
        if isinstance(args, tuple):
            patched = tuple(_renderable(arg) for arg in args)
            return template % patched, description
        if isinstance(args, dict):
            return template % {key: _renderable(val) for key, val in args.items()}, description
    except Exception:
        pass
    rendered_args = ", ".join(safe_str(_renderable(arg)) for arg in (args or ()))
    return f"{template} [args: {rendered_args}]", description


def _renderable(arg: object) -> object:
    try:
        str(arg)
        repr(arg)
    except Exception as error:
        return _Marker(unrenderable_marker(arg, error))
    return arg


def _passes_trace_id_filter(compile_id: Any, attempt: int | None, allowed: frozenset[str]) -> bool:
    """Mirror ``TORCH_LOGS_TRACE_ID_FILTER``: torch prints nothing for other compile ids.

    torch compares the bracketed form it prints (``[0/1]``, ``[0/1_2]``), so do we.
    """
    if compile_id is None:
        return False
    trace_id = str(compile_id) if not attempt else f"{compile_id}_{attempt}"
    return f"[{trace_id}]" in allowed
