"""Bridge settings: ``install()`` arguments, else ``TORCH_OTEL_*`` variables, else defaults.

Every value is validated here, on the caller's thread, and a mistake raises
:class:`~torch_otel.errors.ConfigError` naming the argument or variable it
came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from torch_otel import environment_variables as env
from torch_otel.errors import ConfigError

MiB = 1024 * 1024

DEFAULT_MAX_QUEUE_BYTES = 64 * MiB
DEFAULT_MAX_BATCH_BYTES = 3 * MiB
DEFAULT_MAX_BODY_BYTES = 1 * MiB
DEFAULT_FLUSH_TIMEOUT_S = 5.0
# A request must hold one full chunk plus its attributes and framing.
BATCH_HEADROOM_BYTES = 64 * 1024


@dataclass(frozen=True)
class BridgeSettings:
    """Everything that shapes one bridge. ``None`` means "take the profile's value"."""

    exporter: str | None = None
    output: str | None = None
    console: bool = True
    trace: bool = False
    service_name: str | None = None
    max_queue_records: int | None = None
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S
    ranks: frozenset[int] | None = None
    artifact_ranks: Mapping[str, frozenset[int]] = field(default_factory=dict)
    debug: bool = False
    exporter_from_user: bool = False
    """True when the profile was chosen explicitly (argument or variable), which
    makes the bridge build its own pipeline even if the application already set a
    global LoggerProvider."""

    @classmethod
    def resolve(
        cls, arguments: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> BridgeSettings:
        environ = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)} - {"exporter_from_user"}
        unknown = sorted(set(arguments) - known)
        if unknown:
            raise ConfigError(
                unknown[0], f"unknown install() argument; known: {', '.join(sorted(known))}"
            )

        def pick(name: str, variable: str | None) -> tuple[Any, str]:
            if arguments.get(name) is not None:
                return arguments[name], name
            if variable is not None and environ.get(variable, "") != "":
                return environ[variable], variable
            return None, name

        exporter, exporter_source = pick("exporter", env.TORCH_OTEL_EXPORTER)
        if exporter is None and environ.get(env.OTEL_CONFIG_FILE):
            exporter, exporter_source = environ[env.OTEL_CONFIG_FILE], env.OTEL_CONFIG_FILE
        if exporter is not None and not isinstance(exporter, (str, os.PathLike)):
            raise ConfigError(exporter_source, f"expected a profile name or path, got {exporter!r}")
        output, _ = pick("output", env.TORCH_OTEL_OUTPUT)
        console = _boolean(*pick("console", env.TORCH_OTEL_CONSOLE), default=True)
        trace = _boolean(*pick("trace", env.TORCH_OTEL_TRACE), default=False)
        debug = _boolean(*pick("debug", env.TORCH_OTEL_DEBUG), default=False)
        max_queue_records = _positive_int(
            *pick("max_queue_records", env.TORCH_OTEL_MAX_QUEUE_RECORDS)
        )
        max_queue_bytes = _positive_int(*pick("max_queue_bytes", env.TORCH_OTEL_MAX_QUEUE_BYTES))
        max_batch_bytes = _positive_int(*pick("max_batch_bytes", env.TORCH_OTEL_MAX_BATCH_BYTES))
        max_body_bytes, body_source = pick("max_body_bytes", env.TORCH_OTEL_MAX_BODY_BYTES)
        max_body_bytes = _positive_int(max_body_bytes, body_source)
        flush_timeout = _positive_float(*pick("flush_timeout_s", env.TORCH_OTEL_FLUSH_TIMEOUT))
        ranks = _rank_set(*pick("ranks", env.TORCH_OTEL_RANKS))
        artifact_ranks = _artifact_ranks(*pick("artifact_ranks", env.TORCH_OTEL_ARTIFACT_RANKS))
        service_name = arguments.get("service_name")

        settings = cls(
            exporter=os.fspath(exporter) if exporter is not None else None,
            output=os.fspath(output) if output is not None else None,
            console=console,
            trace=trace,
            service_name=service_name,
            max_queue_records=max_queue_records,
            max_queue_bytes=max_queue_bytes or DEFAULT_MAX_QUEUE_BYTES,
            max_batch_bytes=max_batch_bytes or DEFAULT_MAX_BATCH_BYTES,
            max_body_bytes=max_body_bytes or DEFAULT_MAX_BODY_BYTES,
            flush_timeout_s=flush_timeout if flush_timeout is not None else DEFAULT_FLUSH_TIMEOUT_S,
            ranks=ranks,
            artifact_ranks=artifact_ranks or {},
            debug=debug,
            exporter_from_user=exporter is not None,
        )
        if settings.max_body_bytes + BATCH_HEADROOM_BYTES > settings.max_batch_bytes:
            raise ConfigError(
                body_source,
                f"max_body_bytes ({settings.max_body_bytes}) must be at least "
                f"{BATCH_HEADROOM_BYTES} bytes below max_batch_bytes ({settings.max_batch_bytes}) "
                "so that one chunk always fits in an export request",
            )
        if settings.max_body_bytes < 1024:
            raise ConfigError(body_source, "max_body_bytes must be at least 1024")
        return settings

    def exports_on_rank(self, rank: int | None) -> bool:
        """Whether a process of this rank exports at all (``ranks``; unknown rank: yes)."""
        return self.ranks is None or rank is None or rank in self.ranks

    def excluded_artifacts(self, rank: int | None) -> frozenset[str]:
        """Artifacts this rank must not export (``artifact_ranks``; unknown rank counts as 0)."""
        if not self.artifact_ranks:
            return frozenset()
        effective = 0 if rank is None else rank
        return frozenset(
            name for name, ranks in self.artifact_ranks.items() if effective not in ranks
        )


def _boolean(value: Any, source: str, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(source, f"expected 0/1 or true/false, got {value!r}")


def _positive_int(value: Any, source: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(source, f"expected a positive integer, got {value!r}") from None
    if isinstance(value, bool) or number <= 0:
        raise ConfigError(source, f"expected a positive integer, got {value!r}")
    return number


def _positive_float(value: Any, source: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(source, f"expected a number of seconds, got {value!r}") from None
    if number <= 0:
        raise ConfigError(source, f"expected a positive number of seconds, got {value!r}")
    return number


def _rank_set(value: Any, source: str) -> frozenset[int] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    ranks = set()
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if not text.isdigit():
            raise ConfigError(source, f"expected comma-separated ranks like 0,1, got {value!r}")
        ranks.add(int(text))
    return frozenset(ranks)


def _artifact_ranks(value: Any, source: str) -> dict[str, frozenset[int]] | None:
    """``output_code=0,graph_code=0;1`` or ``{"output_code": [0]}``."""
    if value is None:
        return None
    result: dict[str, frozenset[int]] = {}
    if isinstance(value, Mapping):
        for name, ranks in value.items():
            result[str(name)] = (
                _rank_set(ranks if not isinstance(ranks, int) else [ranks], source) or frozenset()
            )
        return result
    for item in str(value).split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ConfigError(
                source, f"expected artifact=rank[;rank...] pairs like output_code=0, got {item!r}"
            )
        name, ranks = item.split("=", 1)
        result[name.strip()] = _rank_set(ranks.replace(";", ","), source) or frozenset()
    return result
