"""Exporter profiles: OpenTelemetry declarative configuration files.

A profile is a YAML file in the OpenTelemetry declarative configuration
format, loaded and schema-validated by ``opentelemetry-configuration``. The
built-in ones ship in the wheel (``torch_otel/exporters/*.yaml``; in a
source checkout, ``exporters/``); a user passes a name (``otlp-grpc``) or a
path to their own file.

torch-otel reads the ``logger_provider`` section: each processor's exporter
becomes an export target, and the ``batch`` settings (schedule delay, export
timeout, queue and batch sizes) configure the bridge's own export thread,
which replaces the SDK batch processor (it adds byte bounds, retry across
outages and drop accounting). ``resource`` attributes are merged into the
resource; ``tracer_provider`` / ``meter_provider`` sections are used by the
structured-trace features.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from torch_otel import environment_variables as env
from torch_otel.errors import ConfigError
from torch_otel.exporters import ExporterSpec, spec_from_config

BUILTIN_PROFILES = ("console", "otlp-grpc", "otlp-http", "file", "none")
DEFAULT_OUTPUT = "torch-otel-logs.jsonl"


@dataclass(frozen=True)
class BatchSettings:
    """The ``batch`` processor settings of a profile, in the units the pipeline uses."""

    schedule_delay_s: float = 1.0
    export_timeout_s: float = 30.0
    max_queue_records: int = 65536
    max_batch_records: int = 512


@dataclass
class Profile:
    """A loaded, validated exporter profile.

    ``exporters`` are the log exporters; ``span_exporters`` and
    ``metric_exporters`` (with their export interval in seconds) come from the
    ``tracer_provider`` and ``meter_provider`` sections and are used by the
    structured-trace features (``--trace``).
    """

    name: str
    path: Path
    exporters: list[ExporterSpec]
    batch: BatchSettings
    span_exporters: list[ExporterSpec] = field(default_factory=list)
    metric_exporters: list[tuple[ExporterSpec, float]] = field(default_factory=list)
    resource_attributes: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def to_cache(self) -> str:
        """JSON for :data:`RESOLVED_PROFILE_ENV` (see :func:`load_profile`)."""
        return json.dumps(
            {
                "fingerprint": self.fingerprint,
                "name": self.name,
                "path": str(self.path),
                "exporters": [asdict(spec) for spec in self.exporters],
                "batch": asdict(self.batch),
                "span_exporters": [asdict(spec) for spec in self.span_exporters],
                "metric_exporters": [[asdict(spec), i] for spec, i in self.metric_exporters],
                "resource_attributes": self.resource_attributes,
            }
        )

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> Profile:
        return cls(
            name=data["name"],
            path=Path(data["path"]),
            exporters=[_spec(item) for item in data["exporters"]],
            batch=BatchSettings(**data["batch"]),
            span_exporters=[_spec(item) for item in data["span_exporters"]],
            metric_exporters=[(_spec(item), float(i)) for item, i in data["metric_exporters"]],
            resource_attributes=dict(data["resource_attributes"]),
            fingerprint=data["fingerprint"],
        )

    def describe(self) -> str:
        targets = "; ".join(spec.describe() for spec in self.exporters) or "no log exporter"
        return f"profile {self.name!r} ({self.path}): {targets}"


RESOLVED_PROFILE_ENV = "TORCH_OTEL_RESOLVED_PROFILE"
"""Set by ``torch-otel run`` for the processes it starts: the profile it validated.

A process that finds it, with a fingerprint matching the profile file's content
and the environment variables the file references, uses it as is instead of
loading ``opentelemetry-configuration`` (and its schema validation) again: every
Python process of a job (ranks, DataLoader and compile workers) would otherwise
pay a few hundred milliseconds at start-up.
"""


def _spec(item: dict[str, Any]) -> ExporterSpec:
    from torch_otel.exporters import TlsFiles

    fields_ = dict(item)
    fields_["tls"] = TlsFiles(**fields_["tls"])
    return ExporterSpec(**fields_)


def profile_fingerprint(path: Path, environ: Mapping[str, str] | None = None) -> str:
    """Hash of the file and of the values of every ``${VAR}`` it references."""
    environ = os.environ if environ is None else environ
    content = path.read_bytes()
    names = sorted(set(re.findall(rb"\$\{([A-Za-z_][A-Za-z0-9_]*)", content)))
    digest = hashlib.sha256(content)
    for name in names:
        key = name.decode()
        value = environ.get(key)
        digest.update(f"\0{key}=".encode())
        digest.update(b"\x01unset" if value is None else value.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def profile_directory() -> Path:
    """Where the built-in profiles are: inside the installed package, else the checkout."""
    packaged = Path(str(resources.files("torch_otel"))) / "exporters"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "exporters"
    return checkout


def resolve_profile_path(name_or_path: str) -> Path:
    """A built-in profile name or a path to a YAML/JSON file."""
    if name_or_path in BUILTIN_PROFILES:
        return profile_directory() / f"{name_or_path}.yaml"
    looks_like_path = (
        os.sep in name_or_path
        or name_or_path.endswith((".yaml", ".yml", ".json"))
        or Path(name_or_path).exists()
    )
    if not looks_like_path:
        raise ConfigError(
            "exporter",
            f"unknown profile {name_or_path!r}; choose one of {', '.join(BUILTIN_PROFILES)} "
            "or give a path to a declarative-config YAML file",
        )
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        raise ConfigError("exporter", f"profile {str(path)!r} is a directory, not a YAML file")
    if not path.is_file():
        raise ConfigError("exporter", f"profile file {str(path)!r} does not exist")
    if not os.access(path, os.R_OK):
        raise ConfigError("exporter", f"profile file {str(path)!r} is not readable")
    return path


def prepare_output_env(output: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The absolute output path for the ``file`` profile (``--output`` > env > default)."""
    environ = os.environ if environ is None else environ
    chosen = output or environ.get(env.TORCH_OTEL_OUTPUT) or DEFAULT_OUTPUT
    return str(Path(chosen).expanduser().resolve())


def load_profile(name_or_path: str, *, output: str | None = None) -> Profile:
    """Load and validate a profile; every mistake raises :class:`ConfigError`.

    ``output`` (the ``file`` profile's path) is made absolute and exported as
    ``TORCH_OTEL_OUTPUT`` before the file is read, so the profile's
    ``${TORCH_OTEL_OUTPUT}`` and any child process see the same absolute path.
    """
    path = resolve_profile_path(name_or_path)
    if output or env.TORCH_OTEL_OUTPUT in os.environ or name_or_path == "file":
        os.environ[env.TORCH_OTEL_OUTPUT] = prepare_output_env(output)
    fingerprint = profile_fingerprint(path)
    cached = os.environ.get(RESOLVED_PROFILE_ENV)
    if cached:
        try:
            data = json.loads(cached)
            if data.get("fingerprint") == fingerprint and data.get("path") == str(path):
                return Profile.from_cache(data)
        except (ValueError, TypeError, KeyError):
            pass  # stale or foreign: load the file properly below
    from opentelemetry.configuration import ConfigurationError, load_config_file

    try:
        config = _load_quietly(load_config_file, path)
    except ConfigurationError as error:
        raise ConfigError(f"exporter profile {str(path)!r}", str(error)) from None
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"exporter profile {str(path)!r}", f"invalid configuration: {error}"
        ) from None
    if getattr(config, "disabled", None):
        return Profile(
            name=name_or_path,
            path=path,
            exporters=[],
            batch=BatchSettings(),
            fingerprint=fingerprint,
        )
    exporters: list[ExporterSpec] = []
    batch = BatchSettings()
    provider = config.logger_provider
    if provider is not None:
        for index, processor in enumerate(provider.processors):
            setting = f"{path.name}: logger_provider.processors[{index}]"
            if processor.batch is not None:
                batch = _batch_settings(processor.batch)
                block = processor.batch.exporter
            elif processor.simple is not None:
                # A simple processor exports on the emitting thread; the bridge
                # never does that, it exports as soon as possible instead.
                batch = BatchSettings(schedule_delay_s=0.05)
                block = processor.simple.exporter
            else:
                raise ConfigError(setting, "processor must be 'batch' or 'simple'")
            exporters.append(spec_from_config(block, f"{setting}.exporter"))
    span_exporters: list[ExporterSpec] = []
    if config.tracer_provider is not None:
        for index, processor in enumerate(config.tracer_provider.processors):
            block = (
                (processor.batch or processor.simple).exporter
                if (processor.batch or processor.simple)
                else None
            )
            if block is None:
                raise ConfigError(
                    f"{path.name}: tracer_provider.processors[{index}]",
                    "processor must be 'batch' or 'simple'",
                )
            span_exporters.append(
                spec_from_config(block, f"{path.name}: tracer_provider.processors[{index}]")
            )
    metric_exporters: list[tuple[ExporterSpec, float]] = []
    if config.meter_provider is not None:
        for index, reader in enumerate(config.meter_provider.readers):
            setting = f"{path.name}: meter_provider.readers[{index}]"
            if reader.periodic is None:
                raise ConfigError(setting, "only 'periodic' metric readers are supported")
            interval_s = (reader.periodic.interval or 60000) / 1000.0
            metric_exporters.append(
                (spec_from_config(reader.periodic.exporter, f"{setting}.exporter"), interval_s)
            )
    return Profile(
        name=name_or_path,
        path=path,
        exporters=exporters,
        batch=batch,
        span_exporters=span_exporters,
        metric_exporters=metric_exporters,
        resource_attributes=_explicit_resource_attributes(config),
        fingerprint=fingerprint,
    )


def _explicit_resource_attributes(config: Any) -> dict[str, Any]:
    """The attributes the profile's ``resource`` section sets (not the SDK defaults)."""
    if getattr(config, "resource", None) is None:
        return {}
    from opentelemetry.configuration.file import create_resource

    configured = create_resource(config.resource)
    return {
        key: (list(value) if isinstance(value, tuple) else value)
        for key, value in configured.attributes.items()
        if not (key == "service.name" and str(value).startswith("unknown_service"))
        and not key.startswith("telemetry.sdk.")
    }


def _batch_settings(batch: Any) -> BatchSettings:
    defaults = BatchSettings()
    return BatchSettings(
        schedule_delay_s=(batch.schedule_delay / 1000.0)
        if batch.schedule_delay is not None
        else defaults.schedule_delay_s,
        export_timeout_s=(batch.export_timeout / 1000.0)
        if batch.export_timeout
        else defaults.export_timeout_s,
        max_queue_records=batch.max_queue_size or defaults.max_queue_records,
        max_batch_records=batch.max_export_batch_size or defaults.max_batch_records,
    )


def _load_quietly(load: Any, path: Path) -> Any:
    """Call the loader without its own error logging (we raise one clear error instead)."""
    import logging

    loader_logger = logging.getLogger("opentelemetry.configuration.file._loader")
    previous = loader_logger.disabled
    loader_logger.disabled = True
    try:
        return load(path)
    finally:
        loader_logger.disabled = previous


def default_profile_name(environ: Mapping[str, str] | None = None) -> str:
    """The profile to use when none is named.

    ``TORCH_OTEL_EXPORTER`` wins; then ``OTEL_CONFIG_FILE``; then the protocol
    in ``OTEL_EXPORTER_OTLP_(LOGS_)PROTOCOL`` (``grpc`` -> ``otlp-grpc``,
    ``http/protobuf`` -> ``otlp-http``); otherwise ``otlp-grpc``, the
    OpenTelemetry Python default.
    """
    environ = os.environ if environ is None else environ
    explicit = environ.get(env.TORCH_OTEL_EXPORTER)
    if explicit:
        return explicit
    config_file = environ.get(env.OTEL_CONFIG_FILE)
    if config_file:
        return config_file
    protocol = environ.get(env.OTEL_EXPORTER_OTLP_LOGS_PROTOCOL) or environ.get(
        env.OTEL_EXPORTER_OTLP_PROTOCOL
    )
    if protocol:
        mapping = {"grpc": "otlp-grpc", "http/protobuf": "otlp-http"}
        if protocol not in mapping:
            raise ConfigError(
                env.OTEL_EXPORTER_OTLP_PROTOCOL,
                f"protocol {protocol!r} is not supported; use 'grpc' or 'http/protobuf'",
            )
        return mapping[protocol]
    return "otlp-grpc"
