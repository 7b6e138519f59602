"""Bridge settings: ``install()`` arguments, else ``TORCH_OTEL_*`` variables, else defaults.

Every value is validated here, on the caller's thread, and a mistake raises
:class:`~torch_otel.errors.ConfigError` naming the argument or variable it
came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from torch_otel import environment_variables as env
from torch_otel.config.values import (
    Bounds,
    GiB,
    KiB,
    MiB,
    artifact_ranks,
    boolean,
    bounded_number,
    rank_set,
)
from torch_otel.errors import ConfigError


def check_spill_directory(path: Any, setting: str) -> str:
    """An absolute spill directory path; a path that is a file is a ConfigError."""
    directory = Path(os.fspath(path)).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ConfigError(setting, f"spill directory {str(directory)!r} is a file, not a directory")
    return str(directory.resolve())


DEFAULT_MAX_QUEUE_BYTES = 64 * MiB
DEFAULT_MAX_BATCH_BYTES = 3 * MiB
DEFAULT_MAX_BODY_BYTES = 1 * MiB
DEFAULT_FLUSH_TIMEOUT_S = 5.0
DEFAULT_SPILL_MAX_BYTES = 1 * GiB
DEFAULT_SLOW_COMPILE_S = 300.0
DEFAULT_DEDUP_MIN_BYTES = 4096
DEDUP_STORE_TIMEOUT_S = 2.0
"""How long the export thread waits for one answer of the job's store (``dedup``)
before it stops asking and sends bodies in full."""
# A request must hold one full chunk plus its attributes and framing.
BATCH_HEADROOM_BYTES = 64 * 1024

BOUNDS = {
    "max_queue_records": Bounds(1, 10_000_000, unit="records"),
    "max_queue_bytes": Bounds(64 * KiB, 64 * GiB, unit="bytes"),
    "max_batch_bytes": Bounds(65 * KiB, 256 * MiB, unit="bytes"),
    "max_body_bytes": Bounds(1 * KiB, 64 * MiB, unit="bytes"),
    "flush_timeout_s": Bounds(0.001, 3600, integer=False, unit="s"),
    "spill_max_bytes": Bounds(1 * MiB, 16 * 1024 * GiB, unit="bytes"),
    "slow_compile_s": Bounds(0.01, 7 * 24 * 3600, integer=False, unit="s"),
    "dedup_min_bytes": Bounds(64, 64 * MiB, unit="bytes"),
}
"""The accepted range of each number setting (documented in docs/reference.md)."""


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
    spill_dir: str | None = None
    spill_max_bytes: int = DEFAULT_SPILL_MAX_BYTES
    dedup: bool = False
    dedup_min_bytes: int = DEFAULT_DEDUP_MIN_BYTES
    debug: bool = False
    artifact_ranks_source: str = field(default="artifact_ranks", compare=False)
    """Where ``artifact_ranks`` came from (argument or variable), for error messages."""
    compile_metrics: bool = True
    slow_compile_s: float = DEFAULT_SLOW_COMPILE_S
    exporter_from_user: bool = False
    """True when the profile was chosen explicitly (argument or variable), which
    makes the bridge build its own pipeline even if the application already set a
    global LoggerProvider."""

    @classmethod
    def resolve(
        cls, arguments: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> BridgeSettings:
        environ = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)} - {"exporter_from_user", "artifact_ranks_source"}
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

        def number(name: str, variable: str) -> Any:
            return bounded_number(*pick(name, variable), BOUNDS[name])

        exporter, exporter_source = pick("exporter", env.TORCH_OTEL_EXPORTER)
        if exporter is None and environ.get(env.OTEL_CONFIG_FILE):
            exporter, exporter_source = environ[env.OTEL_CONFIG_FILE], env.OTEL_CONFIG_FILE
        if exporter is not None and not isinstance(exporter, (str, os.PathLike)):
            raise ConfigError(exporter_source, f"expected a profile name or path, got {exporter!r}")
        output, _ = pick("output", env.TORCH_OTEL_OUTPUT)
        max_queue_bytes = number("max_queue_bytes", env.TORCH_OTEL_MAX_QUEUE_BYTES)
        max_batch_bytes = number("max_batch_bytes", env.TORCH_OTEL_MAX_BATCH_BYTES)
        max_body_bytes = number("max_body_bytes", env.TORCH_OTEL_MAX_BODY_BYTES)
        flush_timeout = number("flush_timeout_s", env.TORCH_OTEL_FLUSH_TIMEOUT)
        spill_dir, spill_source = pick("spill_dir", env.TORCH_OTEL_SPILL_DIR)
        spill_max_bytes = number("spill_max_bytes", env.TORCH_OTEL_SPILL_MAX_BYTES)
        slow_compile = number("slow_compile_s", env.TORCH_OTEL_SLOW_COMPILE_S)
        dedup_min_bytes = number("dedup_min_bytes", env.TORCH_OTEL_DEDUP_MIN_BYTES)
        settings = cls(
            exporter=os.fspath(exporter) if exporter is not None else None,
            output=os.fspath(output) if output is not None else None,
            console=boolean(*pick("console", env.TORCH_OTEL_CONSOLE), default=True),
            trace=boolean(*pick("trace", env.TORCH_OTEL_TRACE), default=False),
            service_name=arguments.get("service_name"),
            max_queue_records=number("max_queue_records", env.TORCH_OTEL_MAX_QUEUE_RECORDS),
            max_queue_bytes=max_queue_bytes or DEFAULT_MAX_QUEUE_BYTES,
            max_batch_bytes=max_batch_bytes or DEFAULT_MAX_BATCH_BYTES,
            max_body_bytes=max_body_bytes or DEFAULT_MAX_BODY_BYTES,
            flush_timeout_s=flush_timeout if flush_timeout is not None else DEFAULT_FLUSH_TIMEOUT_S,
            ranks=rank_set(*pick("ranks", env.TORCH_OTEL_RANKS)),
            artifact_ranks=artifact_ranks(*pick("artifact_ranks", env.TORCH_OTEL_ARTIFACT_RANKS))
            or {},
            artifact_ranks_source=pick("artifact_ranks", env.TORCH_OTEL_ARTIFACT_RANKS)[1],
            spill_dir=check_spill_directory(spill_dir, spill_source) if spill_dir else None,
            spill_max_bytes=spill_max_bytes or DEFAULT_SPILL_MAX_BYTES,
            dedup=boolean(*pick("dedup", env.TORCH_OTEL_DEDUP), default=False),
            dedup_min_bytes=dedup_min_bytes or DEFAULT_DEDUP_MIN_BYTES,
            debug=boolean(*pick("debug", env.TORCH_OTEL_DEBUG), default=False),
            compile_metrics=boolean(
                *pick("compile_metrics", env.TORCH_OTEL_COMPILE_METRICS), default=True
            ),
            slow_compile_s=slow_compile if slow_compile is not None else DEFAULT_SLOW_COMPILE_S,
            exporter_from_user=exporter is not None,
        )
        body_source = pick("max_body_bytes", env.TORCH_OTEL_MAX_BODY_BYTES)[1]
        if settings.max_body_bytes + BATCH_HEADROOM_BYTES > settings.max_batch_bytes:
            raise ConfigError(
                body_source,
                f"max_body_bytes ({settings.max_body_bytes}) must be at least "
                f"{BATCH_HEADROOM_BYTES} bytes below max_batch_bytes ({settings.max_batch_bytes}) "
                "so that one chunk always fits in an export request",
            )
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
