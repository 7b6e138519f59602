"""Starting and stopping compile health for one bridge: torch's hooks and the health thread.

The hooks (``capture/_torch_compile.py``) hand plain events to
:class:`~torch_otel.trace.health.CompileHealth`, whose thread records metrics and
emits slow-compile records; stopping unhooks first, so nothing arrives after the
thread recorded what was queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from torch_otel.capture._torch_compile import CompileHooks
from torch_otel.trace.health import CompileHealth

_log = logging.getLogger("torch_otel")


def start_compile_health(
    *,
    meter: Callable[[], Any],
    emit_record: Callable[..., bool],
    slow_compile_s: float,
    fallback_rank: int | None,
) -> tuple[CompileHealth, CompileHooks]:
    """Hook torch's compiles and start the health thread."""
    health = CompileHealth(
        meter=meter,
        emit_record=emit_record,
        slow_compile_s=slow_compile_s,
        fallback_rank=fallback_rank,
    )
    hooks = CompileHooks(health.offer)
    hooks.install()
    health.start()
    return health, hooks


def stop_compile_health(health: CompileHealth, hooks: CompileHooks | None) -> None:
    """Unhook from torch, record what is queued (slow-compile ends included)."""
    if hooks is not None:
        hooks.uninstall()
    health.stop()
    if health.last_error or health.events_dropped:
        _log.debug(
            "torch-otel: compile health: %s events dropped, last error %s",
            health.events_dropped,
            health.last_error,
        )
