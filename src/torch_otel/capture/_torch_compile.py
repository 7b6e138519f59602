"""torch internals behind compile health (the other module allowed to touch them).

:mod:`._torch` covers torch's logging; this module covers what torch computes on
every compile without any ``TORCH_LOGS``. Each hook copies a few plain values into
a :mod:`.compile_events` tuple, hands it to ``emit`` (a queue append) and returns;
nothing here waits, exports or changes what torch prints. Every hook is undone by
:meth:`CompileHooks.uninstall` and swallows its own errors (torch's compile must
never fail because of telemetry).

What is used, and why (torch 2.13; each read is guarded so that older versions
degrade to "unknown" instead of failing):

* ``torch._dynamo.callback.callback_handler``: the compile start/end callbacks
  (``register_start_callback`` / ``register_end_callback``; 2.13 passes
  ``CallbackArgs(callback_trigger, compile_id)``). torch runs them for the
  outermost compile only (a process-wide counter) and also when the compile
  raises. ``torch._dynamo.reset()`` clears every callback, so ``clear`` is wrapped
  to register ours again.
* ``torch._dynamo.utils.log_compilation_event``: torch hands it the
  ``CompilationMetrics`` of every compile (open-source builds: a ``log.info`` on
  ``torch._utils_internal``, which prints nothing by default). It is replaced by a
  wrapper that copies the fields and calls the original, so what torch logs is
  unchanged. Needs ``torch._dynamo.config.log_compilation_metrics`` (default on).
* ``InstructionTranslatorBase.log_graph_break``: called once per graph break
  whether or not ``graph_breaks`` logging is on; the exception carries torch's
  ``gb_type`` and the user stack (where the graph broke).
* ``torch._dynamo.exc._load_gb_type_to_gb_id_map``: ``gb_type`` -> ``GBxxxx`` from
  ``graph_break_registry.json`` (read on the compile-health thread, not here).
* At a compile start, the ``code`` argument of dynamo's ``compile_inner`` /
  ``_compile`` frame on the current (compile) thread (the frame being compiled),
  and ``CHROMIUM_EVENT_LOG.get_stack()``: torch's list of the phases open on this
  thread, which the slow-compile check reads later for "phase when known".

``torch._dynamo`` costs more than a second to import and ``import torch`` does not
import it, so the hooks are attached right after it is imported (by
``torch.compile``), never by importing it here.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from torch_otel.capture import _torch
from torch_otel.capture import compile_events as events
from torch_otel.capture._torch import DistributedRankReader, compile_context_reader
from torch_otel.import_watch import ImportWatcher

DYNAMO = _torch.DYNAMO_MODULE

PHASE_FIELDS = (
    ("total", "duration_us"),
    ("dynamo", "dynamo_cumulative_compile_time_us"),
    ("backend", "aot_autograd_cumulative_compile_time_us"),
    ("inductor", "inductor_cumulative_compile_time_us"),
    ("code_gen", "inductor_code_gen_cumulative_compile_time_us"),
    ("backward", "backward_cumulative_compile_time_us"),
)
"""``torch.compile.phase`` values and the ``CompilationMetrics`` field (µs) each comes from."""

_COMPILING_FRAMES = frozenset({"compile_inner", "_compile"})
_MAX_FRAME_WALK = 12


class CompileHooks:
    """Attaches to torch's compile hooks (now, or once ``torch._dynamo`` is imported)."""

    def __init__(self, emit: Callable[[events.CompileEvent], None]) -> None:
        self._emit = emit
        self._read_context = compile_context_reader()
        self._read_rank = DistributedRankReader()
        self._active = False
        self._attached = False
        self._watcher: ImportWatcher | None = None
        self._restore: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    @property
    def attached(self) -> bool:
        return self._attached

    def install(self) -> None:
        """Hook in now if ``torch._dynamo`` is imported, else right after its import."""
        with self._lock:
            if self._active:
                return
            self._active = True
            if _dynamo_imported():
                self._attach()
            else:
                self._watcher = ImportWatcher(DYNAMO, self._attach_after_import)
                sys.meta_path.insert(0, self._watcher)

    def uninstall(self) -> None:
        """Undo every hook (those someone wrapped again become pass-throughs)."""
        with self._lock:
            self._active = False
            if self._watcher is not None and self._watcher in sys.meta_path:
                sys.meta_path.remove(self._watcher)
            self._watcher = None
            for restore in reversed(self._restore):
                try:
                    restore()
                except Exception:  # pragma: no cover - restoring must not raise
                    pass
            self._restore = []
            self._attached = False

    # -- attaching -------------------------------------------------------------------
    def _attach_after_import(self) -> None:
        with self._lock:
            if self._active and not self._attached:
                self._attach()

    def _attach(self) -> None:
        try:
            self._attach_callbacks()
            self._attach_metrics()
            self._attach_graph_breaks()
            self._attached = True
        except Exception as error:  # pragma: no cover - an unknown torch: degrade, never fail
            import logging

            logging.getLogger("torch_otel").debug(
                "torch-otel: compile health could not hook into torch: %r", error
            )

    def _attach_callbacks(self) -> None:
        from torch._dynamo.callback import callback_handler

        def register() -> None:
            if self._on_start not in callback_handler.start_callbacks:
                callback_handler.register_start_callback(self._on_start)
            if self._on_end not in callback_handler.end_callbacks:
                callback_handler.register_end_callback(self._on_end)

        original_clear = callback_handler.clear

        def clear() -> None:  # torch._dynamo.reset() clears every callback
            try:
                original_clear()
            finally:
                if self._active:
                    register()

        register()
        callback_handler.clear = clear

        def restore() -> None:
            if callback_handler.__dict__.get("clear") is clear:
                del callback_handler.clear
            for callbacks, callback in (
                (callback_handler.start_callbacks, self._on_start),
                (callback_handler.end_callbacks, self._on_end),
            ):
                if callback in callbacks:
                    callbacks.remove(callback)

        self._restore.append(restore)

    def _attach_metrics(self) -> None:
        import torch._dynamo.utils as dynamo_utils

        original = dynamo_utils.log_compilation_event

        def log_compilation_event(metrics: Any) -> Any:
            if self._active:
                try:
                    self._emit(self._finished(metrics))
                except Exception:
                    pass
            return original(metrics)

        dynamo_utils.log_compilation_event = log_compilation_event

        def restore() -> None:
            if dynamo_utils.log_compilation_event is log_compilation_event:
                dynamo_utils.log_compilation_event = original

        self._restore.append(restore)

    def _attach_graph_breaks(self) -> None:
        from torch._dynamo.symbolic_convert import InstructionTranslatorBase

        original = InstructionTranslatorBase.__dict__["log_graph_break"]

        def log_graph_break(tx: Any, *args: Any, **kwargs: Any) -> Any:
            exc = kwargs.get("exc", args[2] if len(args) > 2 else None)
            already_logged = bool(getattr(exc, "logged", False))
            result = original(tx, *args, **kwargs)
            if self._active and not already_logged:
                try:
                    reason = kwargs.get("reason", args[1] if len(args) > 1 else "")
                    self._emit(self._graph_break(tx, exc, reason))
                except Exception:
                    pass
            return result

        InstructionTranslatorBase.log_graph_break = log_graph_break

        def restore() -> None:
            if InstructionTranslatorBase.__dict__.get("log_graph_break") is log_graph_break:
                InstructionTranslatorBase.log_graph_break = original

        self._restore.append(restore)

    # -- the hooks (compile thread) ----------------------------------------------------
    def _on_start(self, args: Any = None) -> None:
        if not self._active:
            return
        try:
            self._emit(
                events.CompileStarted(
                    self._compile_id(args),
                    _trigger(args),
                    time.monotonic(),
                    threading.get_ident(),
                    _compiling_code(),
                    self._read_rank(),
                    _phase_stack(),
                )
            )
        except Exception:
            pass

    def _on_end(self, args: Any = None) -> None:
        if not self._active:
            return
        try:
            self._emit(
                events.CompileEnded(self._compile_id(args), _trigger(args), time.monotonic())
            )
        except Exception:
            pass

    def _compile_id(self, args: Any) -> str:
        compile_id = getattr(args, "compile_id", None)
        if compile_id is None:  # torch versions whose callbacks take no arguments
            context = self._read_context()
            compile_id = getattr(context, "compile_id", None)
        return "?" if compile_id is None else str(compile_id)

    def _finished(self, metrics: Any) -> events.CompileFinished:
        name = getattr(metrics, "co_name", None)
        code = (
            events.CodeLocation(
                str(name),
                str(getattr(metrics, "co_filename", None) or ""),
                int(getattr(metrics, "co_firstlineno", None) or 0),
            )
            if name
            else None
        )
        phases = []
        for phase, field in PHASE_FIELDS:
            value = getattr(metrics, field, None)
            if value is None and phase == "total":
                start = getattr(metrics, "start_time_us", None)
                end = getattr(metrics, "end_time_us", None)
                value = end - start if start is not None and end is not None else None
            if isinstance(value, (int, float)):
                phases.append((phase, value / 1e6))
        compile_id = getattr(metrics, "compile_id", None)
        reason = getattr(metrics, "recompile_reason", None)
        restart_reasons = getattr(metrics, "restart_reasons", None)
        return events.CompileFinished(
            str(compile_id) if compile_id else None,
            code,
            getattr(metrics, "fail_type", None),
            str(reason) if reason else None,
            getattr(metrics, "is_forward", True) is not False,
            bool(getattr(metrics, "is_runtime", False)),
            tuple(sorted(str(r).split("\n", 1)[0] for r in restart_reasons or ())),
            tuple(phases),
            self._read_rank(),
        )

    def _graph_break(self, tx: Any, exc: Any, reason: Any) -> events.GraphBreak:
        break_type = getattr(exc, "gb_type", None) if exc is not None else None
        if not break_type:
            break_type = type(exc).__name__ if exc is not None else str(reason).split("\n")[0]
        stack = getattr(exc, "real_stack", None)
        if stack:
            last = stack[-1]
            location = events.CodeLocation(
                str(last.name), str(last.filename), int(last.lineno or 0)
            )
        else:
            code = tx.f_code
            location = events.CodeLocation(code.co_name, code.co_filename, int(tx.lineno or 0))
        context = self._read_context()
        compile_id = getattr(context, "compile_id", None)
        return events.GraphBreak(
            None if compile_id is None else str(compile_id),
            str(break_type),
            location,
            self._read_rank(),
        )


def graph_break_id(break_type: str) -> str | None:
    """torch's registry id (``GB0059``) of a graph-break type, if it is registered."""
    try:
        from torch._dynamo.exc import _load_gb_type_to_gb_id_map

        found = _load_gb_type_to_gb_id_map().get(break_type)
    except Exception:  # pragma: no cover - torch without the registry
        return None
    return str(found) if found else None


def _dynamo_imported() -> bool:
    module = sys.modules.get(DYNAMO)
    return module is not None and hasattr(module, "reset")  # its import has completed


def _trigger(args: Any) -> str:
    trigger = getattr(args, "callback_trigger", None)
    name = getattr(trigger, "name", None)
    return name.lower() if isinstance(name, str) else "dynamo"


def _compiling_code() -> events.CodeLocation | None:
    """The code object dynamo is compiling, from its ``compile_inner`` frame (own thread)."""
    frame = sys._getframe(2)
    for _ in range(_MAX_FRAME_WALK):
        if frame is None:
            return None
        if frame.f_code.co_name in _COMPILING_FRAMES:
            code = frame.f_locals.get("code")
            if code is None:
                return None
            return events.CodeLocation(code.co_name, code.co_filename, code.co_firstlineno)
        frame = frame.f_back
    return None


def _phase_stack() -> Any:
    utils = sys.modules.get("torch._dynamo.utils")
    logger = getattr(utils, "CHROMIUM_EVENT_LOG", None)
    return logger.get_stack() if logger is not None else None
