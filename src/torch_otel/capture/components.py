"""What torch's logging registry says about a logger: its component and artifact.

torch keeps a registry (``torch._logging._internal.log_registry``) of aliases
(``dynamo`` -> ``torch._dynamo``) and artifact names (``guards``). A record
only carries its logger name, so the bridge resolves that name to the alias
that owns it (``torch.component``) and, for artifact loggers named
``<module>.__<artifact>``, to the artifact (``torch.artifact``).

The answer depends only on the logger name and the registry, so it is cached
per name; :meth:`ComponentResolver.refresh` drops the cache whenever torch
re-initialises its logging (the only time the set of loggers torch prints
through can change).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch_otel.capture import _torch


@dataclass(frozen=True, slots=True)
class LoggerOrigin:
    """The registry's view of one logger name."""

    component: str
    artifact: str | None


class ComponentResolver:
    """Maps logger names to :class:`LoggerOrigin`, following the contract's rule.

    The component is the alias whose registered logger name is the longest
    dotted prefix of the record's logger name; when several aliases register
    that same name, the alias registering the fewest names wins (it is the most
    specific one: ``torch.fx.experimental.symbolic_shapes`` is registered by
    ``dynamo``, ``dynamic`` and ``export``, and belongs to ``dynamic``).
    """

    def __init__(self, registry: Any | None = None) -> None:
        self._registry = registry
        self._owner_by_qname: dict[str, str] = {}
        self._cache: dict[str, LoggerOrigin] = {}
        self.refresh()

    @property
    def registry(self) -> Any:
        return self._registry if self._registry is not None else _torch.log_registry()

    def refresh(self) -> None:
        """Re-read the registry; called after every torch logging re-initialisation."""
        self._owner_by_qname = owners_by_logger_name(self.registry.log_alias_to_log_qnames)
        self._cache = {}

    def registered_logger_names(self) -> list[str]:
        """Names of the loggers torch attaches its own stderr handler to."""
        return sorted(self._owner_by_qname)

    def resolve(self, logger_name: str) -> LoggerOrigin:
        """Component and artifact of ``logger_name`` (cached)."""
        origin = self._cache.get(logger_name)
        if origin is None:
            origin = self._resolve_uncached(logger_name)
            self._cache[logger_name] = origin
        return origin

    def _resolve_uncached(self, logger_name: str) -> LoggerOrigin:
        artifact = artifact_of(logger_name, self.registry.artifact_names)
        name = logger_name
        while True:
            owner = self._owner_by_qname.get(name)
            if owner is not None:
                return LoggerOrigin(component=owner, artifact=artifact)
            dot = name.rfind(".")
            if dot < 0:
                # Not under any registered logger (cannot happen for a record a
                # torch handler would print, since those hang off registered
                # loggers); fall back to the top-level package name.
                return LoggerOrigin(component=logger_name.split(".", 1)[0], artifact=artifact)
            name = name[:dot]


def owners_by_logger_name(aliases: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """For each registered logger name, the alias that owns it.

    Ties (one name, several aliases) go to the alias with the fewest names,
    then to the alphabetically first alias, so the choice is deterministic.
    """
    candidates: dict[str, list[tuple[int, str]]] = {}
    for alias, qnames in aliases.items():
        names = [qnames] if isinstance(qnames, str) else list(qnames)
        for qname in names:
            candidates.setdefault(qname, []).append((len(names), alias))
    return {qname: min(options)[1] for qname, options in candidates.items()}


def artifact_of(logger_name: str, artifact_names: Iterable[str]) -> str | None:
    """The artifact an artifact logger (``<module>.__<artifact>``) belongs to."""
    declared = _torch.declared_artifact(logger_name)
    if declared is not None:
        return declared
    cut = logger_name.rfind(_torch.ARTIFACT_SEPARATOR)
    if cut < 0:
        return None
    candidate = logger_name[cut + len(_torch.ARTIFACT_SEPARATOR) :]
    return candidate if candidate in set(artifact_names) else None
