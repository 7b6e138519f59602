"""Process lifecycle: flush at exit and on SIGTERM, stay correct across ``fork``.

* ``atexit``: normal exit, ``sys.exit`` and an uncaught exception all end in
  the interpreter's atexit stage, where the bridge flushes within its deadline.
  (The export thread is a daemon, so a stalled collector can never keep the
  process alive.)
* A signal *during* the exit flush (Kubernetes sends SIGTERM at pod termination,
  a user presses Ctrl-C at a stalled exit): the flush stops at once, what is left is
  counted, the report line is still printed, and the process then dies by that
  signal (its status is the signal's; no ``atexit`` traceback).
* SIGTERM (what torchrun, SLURM and Kubernetes send): by default Python dies
  without running atexit. If nobody else handles SIGTERM, the bridge installs a
  handler that flushes and then re-raises the signal with the default action,
  so the process still ends "killed by SIGTERM" as its parent expects; if the
  application has its own Python handler, the bridge flushes and chains to it.
* ``fork`` (DataLoader workers, ``multiprocessing`` with the fork start
  method): the child gets fresh locks and an empty buffer (the parent sends
  what it had queued), drops the parent's exporters (their sockets belong to
  the parent), and starts its own export thread. ``multiprocessing`` children
  leave through ``os._exit``, which skips atexit, so a ``multiprocessing``
  finalizer flushes them.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExitCallbacks:
    """What a bridge does at each process event."""

    on_exit: Callable[[], None]
    """The exit flush (atexit, SIGTERM, a multiprocessing child's finalizer)."""
    on_fork_child: Callable[[], None]
    """In a forked child, before it runs anything else."""
    on_prepare_exit: Callable[[], None] | None = None
    """While the interpreter can still import (threading's exit hook, before atexit)."""
    on_exit_interrupted: Callable[[int], None] | None = None
    """A signal ended the exit flush early (its number)."""


class ExitHooks:
    """Registers and unregisters the process-level hooks for one bridge."""

    def __init__(self, callbacks: ExitCallbacks) -> None:
        self._callbacks = callbacks
        self._prepare_registered = False
        self._previous_sigterm: Any = None
        self._sigterm_installed = False
        self._active = False

    def install(self) -> None:
        self._active = True
        atexit.register(self._run_exit)
        self._register_prepare_exit()
        self._install_sigterm()
        _register_fork_hook(self)
        # multiprocessing clears its finalizer registry in each new child and then
        # runs its own after-fork callbacks: that is where the exit flush must be
        # registered for a multiprocessing child (which leaves through os._exit).
        import multiprocessing.util

        multiprocessing.util.register_after_fork(self, _register_multiprocessing_finalizer)

    def uninstall(self) -> None:
        self._active = False
        atexit.unregister(self._run_exit)
        if self._sigterm_installed and threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGTERM) == self._handle_sigterm:
                    signal.signal(signal.SIGTERM, self._previous_sigterm or signal.SIG_DFL)
            except (ValueError, OSError):  # pragma: no cover
                pass
        self._sigterm_installed = False

    def _register_prepare_exit(self) -> None:
        """Get ready for the exit flush while the interpreter can still import.

        By the time ``atexit`` handlers run, ``concurrent.futures`` refuses new
        work, and importing the OpenTelemetry SDK (which builds a ``Resource`` on a
        thread pool at import) fails: a short job whose first export would be the
        exit flush would lose its records. ``threading``'s own exit hooks run
        before that point (and before ``atexit``), so the exporters are imported
        and built there; the flush itself still runs at ``atexit``, after torch's
        own exit-time logging.
        """
        register = getattr(threading, "_register_atexit", None)
        if self._callbacks.on_prepare_exit is None or register is None or self._prepare_registered:
            return
        try:
            register(self._run_prepare_exit)
            self._prepare_registered = True
        except RuntimeError:  # interpreter already shutting down
            pass

    def _run_prepare_exit(self) -> None:
        if self._active and self._callbacks.on_prepare_exit is not None:
            try:
                self._callbacks.on_prepare_exit()
            except Exception:  # pragma: no cover - the flush reports what it could not do
                pass

    def _run_exit(self) -> None:
        if not self._active:
            return
        self._active = False
        guard = _ExitSignalGuard()
        try:
            with guard:
                self._callbacks.on_exit()
        except _ExitInterrupted as interrupted:
            if self._callbacks.on_exit_interrupted is not None:
                self._callbacks.on_exit_interrupted(interrupted.signum)
            _die_by(interrupted.signum)

    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        try:
            previous = signal.getsignal(signal.SIGTERM)
        except (ValueError, OSError):  # pragma: no cover
            return
        if previous is signal.SIG_IGN or previous is None:
            return  # someone chose to ignore SIGTERM, or a C handler we can't chain
        self._previous_sigterm = previous
        signal.signal(signal.SIGTERM, self._handle_sigterm)
        self._sigterm_installed = True

    def _handle_sigterm(self, signum: int, frame: Any) -> None:
        self._run_exit()
        previous = self._previous_sigterm
        if callable(previous) and previous is not signal.SIG_DFL:
            previous(signum, frame)
            return
        # Default action: die by the signal, exactly as without us.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGTERM)

    def after_fork_in_child(self) -> None:
        if not self._active:
            return
        # The signal handler and atexit registration are inherited as they are.
        self._callbacks.on_fork_child()


class _ExitInterrupted(BaseException):
    """Raised in the main thread by a signal during the exit flush (not an Exception:
    no ``except Exception`` on the way may swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _ExitSignalGuard:
    """While the exit flush runs (main thread only), SIGTERM and SIGINT end it early."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _ExitSignalGuard:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                try:
                    self._previous[signum] = signal.signal(signum, self._interrupt)
                except (ValueError, OSError):  # pragma: no cover
                    pass
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, previous in self._previous.items():
            try:
                if exc_info[0] is not None:
                    signal.signal(signum, signal.SIG_IGN)  # reporting, then dying by it
                elif signal.getsignal(signum) == self._interrupt:
                    signal.signal(signum, previous)
            except (ValueError, OSError, TypeError):  # pragma: no cover
                pass

    @staticmethod
    def _interrupt(signum: int, frame: Any) -> None:
        raise _ExitInterrupted(signum)


def _die_by(signum: int) -> None:
    """End the process by ``signum`` with its default action, as if we were not here."""
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # pragma: no cover - only if the signal is blocked


_fork_hook_owners: weakref.WeakSet[ExitHooks] = weakref.WeakSet()
_fork_hook_registered = False


def _register_fork_hook(hooks: ExitHooks) -> None:
    """One ``os.register_at_fork`` for the process (it cannot be unregistered)."""
    global _fork_hook_registered
    _fork_hook_owners.add(hooks)
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_registered = True


def _after_fork_in_child() -> None:
    for hooks in list(_fork_hook_owners):
        try:
            hooks.after_fork_in_child()
        except Exception as error:  # pragma: no cover - must never break a fork
            print(f"torch-otel: after-fork reset failed: {error!r}", file=sys.stderr)


def _register_multiprocessing_finalizer(hooks: ExitHooks) -> None:
    """In a multiprocessing child: flush when it exits (lowest priority: last)."""
    if not hooks._active:
        return
    import multiprocessing.util

    multiprocessing.util.Finalize(None, hooks._run_exit, exitpriority=-100)
