"""What the compile thread hands to the export thread: plain data, rendered there.

A ``logging.LogRecord`` holds references to torch objects (lazy strings, guard
managers, frames) whose state changes after the logging call returns. The
capture side copies what the exporter needs into a :class:`CapturedRecord` of
plain values, rendering the message and any exception on the logging thread.
Bad content never raises into torch's code: an argument whose ``__str__`` raises
is replaced by a marker and the record says why (``torch_otel.render_error``).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, NamedTuple


class CapturedException(NamedTuple):
    """Exception details rendered on the emitting thread (traceback frames die with it)."""

    type_name: str
    message: str
    stacktrace: str


class CapturedEvent(NamedTuple):
    """What makes a record an event torch-otel emits itself (``torch.compile.slow``...):
    its event name, the component it is about, and its own attributes."""

    name: str
    component: str
    attributes: dict[str, Any]


class CapturedRecord(NamedTuple):
    """Plain-data copy of a ``logging.LogRecord``, safe to keep after the call.

    ``new_captured`` builds it positionally on the hot path: every construction site
    passes every field.
    """

    logger_name: str
    levelno: int
    created: float
    message: str
    pathname: str
    lineno: int
    func_name: str | None
    thread_id: int | None
    thread_name: str | None
    compile_id: Any = None  # torch._guards.CompileId
    attempt: int | None = None
    exception: CapturedException | None = None
    stack_info: str | None = None
    render_error: str | None = None
    rank: int | None = None
    metadata: dict[str, Any] | None = None  # structured trace records only
    event: CapturedEvent | None = None  # torch-otel's own events (compile health) only


def new_captured(*fields: Any) -> CapturedRecord:
    """Build a CapturedRecord without NamedTuple's argument handling (compile-thread speed)."""
    return tuple.__new__(CapturedRecord, fields)


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
