"""The one place that knows about torch internals.

torch-otel relies on a handful of private names in ``torch._logging._internal``,
``torch._guards`` and ``torch.distributed``. Every access to them is in this
module, so when torch changes, this is the file to open (and the only one whose
tests need a new torch to run). Nothing here imports torch at module import:
``torch-otel run`` validates its settings without paying for ``import torch``.

What is used, and why:

* ``torch._logging._internal._init_logs``: torch re-initialises its handlers there
  (``import torch``, every ``set_logs()``); the bridge re-attaches after each call.
* ``log_registry`` (aliases and artifact names), ``_is_torch_handler`` (which
  handlers are torch's own stderr handlers), ``_parse_log_settings`` (validate
  ``TORCH_LOGS`` with torch's own parser), ``_get_log_state`` (what is enabled),
  ``make_module_path_relative`` (the path torch prints in a trace prefix),
  ``_StderrHandler`` (torch 2.14's console handler class).
* ``torch/_logging/_registrations.py``, read as source (never imported): the names torch
  registers, so ``torch-otel run`` can accept a ``TORCH_LOGS`` of such names without
  importing torch before the job does.
* ``torch._guards._TLS.compile_context``: the compile id of the running compile,
  read per record on the compile thread (``CompileContext.try_get`` as fallback).
* ``torch.distributed.distributed_c10d.GroupMember.WORLD`` / ``get_rank()``: the
  rank, read per record, cheaply; ``_get_default_store()``: the job's store
  (torchrun's ``TCPStore``), which ``dedup`` asks from the export thread through a
  ``TCPStore`` client of its own (:func:`connect_store`).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRACE_LOGGER_NAME = "torch.__trace"
"""The logger of torch's structured trace (``TORCH_TRACE``, read by tlparse)."""

ARTIFACT_SEPARATOR = ".__"
"""Artifact loggers are named ``<module>.__<artifact>`` (``getArtifactLogger``)."""

DYNAMO_MODULE = "torch._dynamo"
"""Imported by ``torch.compile`` (more than a second), not by ``import torch``."""

TRACE_FILE_PREFIX = "dedicated_log_torch_trace_"
"""torch's ``LOG_PREFIX``: the name its trace files start with (tlparse keys on it)."""


TESTED_TORCH = ((2, 6), (2, 14))
"""The torch minor versions CI has run against (first and last, inclusive)."""


def _logging_internal() -> Any:
    from torch._logging import _internal

    return _internal


# --- what this torch supports -----------------------------------------------------------------
@dataclass(frozen=True)
class TorchSupport:
    """What torch-otel can do with the torch it runs on."""

    version: str
    tested: bool
    missing: tuple[str, ...]
    """Features this torch lacks the internals for (each degrades, see ``FEATURES``)."""
    can_bridge: bool
    """False only without torch's logging registry: nothing can be attached then."""

    def warning(self) -> str | None:
        """One line for the user, or None when everything is expected to work."""
        if self.tested and not self.missing:
            return None
        low, high = (".".join(map(str, v)) for v in TESTED_TORCH)
        line = f"torch-otel: torch {self.version} is "
        line += "tested" if self.tested else f"untested (tested: {low} to {high})"
        if self.missing:
            line += "; not available here: " + "; ".join(self.missing)
        if not self.can_bridge:
            return line + "; torch's logs cannot be bridged"
        return line + ("; everything else works" if self.missing else "")


FEATURES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "registry": (
        "component and artifact names (log_registry)",
        lambda internal: hasattr(internal.log_registry, "log_alias_to_log_qnames"),
    ),
    "init_logs": (
        "following set_logs() after install (_init_logs)",
        lambda internal: callable(getattr(internal, "_init_logs", None)),
    ),
    "handler_ownership": (
        "--no-console (_is_torch_handler)",
        lambda internal: callable(getattr(internal, "_is_torch_handler", None)),
    ),
    "log_settings": (
        "TORCH_LOGS validation (_parse_log_settings)",
        lambda internal: callable(getattr(internal, "_parse_log_settings", None)),
    ),
    "compile_context": (
        "compile ids (torch._guards)",
        lambda internal: _compile_context_available(),
    ),
}
"""Each internal torch-otel relies on: what it gives the user, and how to check it."""


@functools.cache
def support() -> TorchSupport:
    """Probe the torch this process runs (once): version, and which internals exist."""
    import torch

    internal = _logging_internal()
    missing = []
    for key, (description, check) in FEATURES.items():
        try:
            present = bool(check(internal))
        except Exception:
            present = False
        if not present:
            missing.append((key, description))
    version = str(torch.__version__)
    return TorchSupport(
        version=version,
        tested=_minor(version) is not None
        and TESTED_TORCH[0] <= _minor(version) <= TESTED_TORCH[1],  # type: ignore[operator]
        missing=tuple(description for _key, description in missing),
        can_bridge="registry" not in {key for key, _ in missing},
    )


def _minor(version: str) -> tuple[int, int] | None:
    parts = version.split("+")[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def _compile_context_available() -> bool:
    import torch._guards as guards

    return hasattr(guards, "_TLS") or hasattr(getattr(guards, "CompileContext", None), "try_get")


# --- torch's logging registry and handlers -------------------------------------------------
def log_registry() -> Any:
    """torch's registry object (aliases -> logger names, artifact names)."""
    return _logging_internal().log_registry


def declared_artifact(logger_name: str) -> str | None:
    """The ``artifact_name`` torch sets on an artifact logger, if that logger exists."""
    logger = logging.Logger.manager.loggerDict.get(logger_name)
    declared = getattr(logger, "artifact_name", None)
    return declared if isinstance(declared, str) else None


def init_logs_function() -> Callable[..., Any] | None:
    """torch's current ``_init_logs`` (possibly already wrapped), None if it has none."""
    return getattr(_logging_internal(), "_init_logs", None)


def replace_init_logs(function: Callable[..., Any]) -> None:
    """Make ``function`` the ``_init_logs`` torch calls (both names it is reachable by)."""
    import torch._logging

    _logging_internal()._init_logs = function
    torch._logging._init_logs = function


def reinit_logs() -> None:
    """Re-apply torch's logging settings now (what ``import torch`` does)."""
    _logging_internal()._init_logs()


def is_torch_handler(handler: logging.Handler) -> bool:
    """Whether torch created ``handler`` itself (and will remove it at re-init).

    Without ``_is_torch_handler`` nothing counts as torch's (never remove a foreign
    handler): ``--no-console`` then leaves torch's console output in place.
    """
    check = getattr(_logging_internal(), "_is_torch_handler", None)
    return bool(check(handler)) if callable(check) else False


def is_torch_stderr_handler(handler: logging.Handler) -> bool:
    """A handler torch created that writes to stderr (not a ``TORCH_LOGS_OUT`` file).

    torch up to 2.13 uses a plain ``StreamHandler``; 2.14 a ``_StderrHandler`` that
    follows ``sys.stderr`` (so test capture cannot leave it a closed stream).
    """
    return type(handler) in _torch_stderr_handler_types() and is_torch_handler(handler)


def _torch_stderr_handler_types() -> tuple[type, ...]:
    follows_stderr = getattr(_logging_internal(), "_StderrHandler", None)
    if isinstance(follows_stderr, type):
        return (logging.StreamHandler, follows_stderr)
    return (logging.StreamHandler,)


def rejected_log_settings(value: str) -> list[str] | None:
    """``None`` if torch accepts ``TORCH_LOGS=value``; else the entries it rejects.

    An empty list means torch rejects the value as a whole (not a comma list).
    """
    parse = getattr(_logging_internal(), "_parse_log_settings", None)
    if not callable(parse):
        return None  # cannot check here; torch itself still will
    try:
        parse(value)
        return None
    except ValueError:
        pass
    bad = []
    for item in value.replace(" ", "").split(","):
        if not item:
            continue
        try:
            parse(item)
        except ValueError:
            bad.append(item)
    return bad


_SIMPLE_LOG_SETTINGS = re.compile(r"[+-]?\w+(,\s*[+-]?\w+)*")
"""The part of torch's ``TORCH_LOGS`` grammar without module names (dotted or not
registered): what :func:`surely_accepted_log_settings` can decide without torch."""


def surely_accepted_log_settings(value: str) -> bool:
    """True only if torch will accept ``TORCH_LOGS=value``, decided without ``import torch``.

    ``torch-otel run`` checks ``TORCH_LOGS`` before starting the job, and importing torch
    for that costs the job a second of CPU before its own ``import torch``. Names that
    torch registers in ``torch/_logging/_registrations.py`` (read as source, never run)
    are accepted here; anything else (a module name, a typo, an unreadable file) returns
    False, and torch's own parser decides (:func:`rejected_log_settings`).
    """
    if value in ("help", "+help") or not _SIMPLE_LOG_SETTINGS.fullmatch(value):
        return False
    names = {item.strip().lstrip("+-") for item in value.split(",")}
    return names <= registered_log_names() | {"all"}


@functools.cache
def registered_log_names() -> frozenset[str]:
    """Aliases and artifacts registered at the top level of torch's ``_registrations.py``
    (empty if torch or the file is not found, or the file is not as expected)."""
    try:
        spec = importlib.util.find_spec("torch")  # finds, does not import, the package
        locations = list(spec.submodule_search_locations or []) if spec else []
        source = Path(locations[0], "_logging", "_registrations.py").read_text("utf-8")
        tree = ast.parse(source)
    except (ImportError, IndexError, OSError, SyntaxError, ValueError):
        return frozenset()
    names = set()
    for statement in tree.body:  # top level only: a conditional registration may not run
        call = statement.value if isinstance(statement, ast.Expr) else None
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id in ("register_log", "register_artifact")
            and call.args
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
        ):
            names.add(call.args[0].value)
    return frozenset(names)


def enabled_logging() -> tuple[dict[str, str], list[str]]:
    """Components (alias -> level name) and artifacts torch's logging has enabled now."""
    import torch  # noqa: F401 - applies TORCH_LOGS

    internal = _logging_internal()
    try:
        state = internal._get_log_state()
    except AttributeError:  # pragma: no cover - other torch versions
        return {}, []
    owners: dict[str, str] = {}
    for alias, qnames in internal.log_registry.log_alias_to_log_qnames.items():
        for qname in qnames:
            owners.setdefault(qname, alias)
    components = {
        owners.get(qname, qname): logging.getLevelName(level)
        for qname, level in state.log_qname_to_level.items()
        if qname != "torch" or level != logging.WARNING
    }
    return components, sorted(state.artifact_names)


def module_path_relative(pathname: str) -> str:
    """The path as torch prints it in a trace prefix (relative to its package root)."""
    try:
        return str(_logging_internal().make_module_path_relative(pathname))
    except Exception:  # pragma: no cover - older torch
        return pathname


# --- compile context and rank, read on the compile thread ----------------------------------
def compile_context_reader() -> Callable[[], Any]:
    """A zero-argument function giving torch's current ``CompileContext`` or None.

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
    try:  # pragma: no cover - depends on torch version
        from torch._guards import CompileContext

        return CompileContext.try_get  # type: ignore[no-any-return]
    except (ImportError, AttributeError):  # pragma: no cover
        return lambda: None


class DistributedRankReader:
    """The global rank while ``torch.distributed`` is initialised, read cheaply per record.

    Read on the compile thread because a job may tear its process group down
    before the export thread maps the record. ``get_rank()`` is only called when
    the default process group object changes; otherwise this is two attribute
    loads and an identity check. At that change it also keeps a reference to the
    group's store (:attr:`store`; a dictionary lookup, no call into the store), for
    ``dedup`` on the export thread even after the job destroyed its group.
    """

    __slots__ = ("_c10d", "_group", "_rank", "store")

    def __init__(self) -> None:
        self._c10d: Any = None
        self._group: Any = None
        self._rank: int | None = None
        self.store: Any = None

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
            store = default_group_store()
            if store is not None:
                self.store = store
            self._group = group
        return self._rank


# --- the job's store (dedup; export thread only) -------------------------------------------
def default_group_store() -> Any:
    """The default process group's store, or None. Reads torch's group map only."""
    c10d = sys.modules.get("torch.distributed.distributed_c10d")
    if c10d is None or c10d.GroupMember.WORLD is None:
        return None
    try:
        return c10d._get_default_store()
    except Exception:
        return None


def store_endpoint(store: Any) -> tuple[str, int] | None:
    """``(host, port)`` of the ``TCPStore`` under ``store``'s prefixes; None for other stores."""
    for _ in range(8):  # PrefixStore over PrefixStore over TCPStore, at most a few deep
        if store is None:
            return None
        host, port = getattr(store, "host", None), getattr(store, "port", None)
        if isinstance(host, str) and isinstance(port, int):
            return host, port
        store = getattr(store, "underlying_store", None)
    return None


def connect_store(host: str, port: int, timeout_s: float) -> Any:
    """A new ``TCPStore`` client of the job's store server.

    A connection of its own, so that a request of ours that never gets an answer
    holds no lock torch's own client needs (a training job's barriers and group
    creation go through that one). torch does not apply ``timeout`` to every
    request (an ``add`` to a server that stopped answering blocks for good), so the
    caller runs requests on a thread it can stop waiting for.
    """
    from datetime import timedelta

    from torch.distributed import TCPStore

    return TCPStore(
        host, port, is_master=False, timeout=timedelta(seconds=timeout_s), wait_for_workers=False
    )
