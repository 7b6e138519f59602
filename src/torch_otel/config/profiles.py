"""Exporter profiles: OpenTelemetry declarative configuration files.

A profile is a YAML file in the OpenTelemetry declarative configuration
format, loaded and schema-validated by ``opentelemetry-configuration``. The
built-in ones ship in the wheel (``torch_otel/profiles/*.yaml``; in a
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
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from torch_otel import environment_variables as env
from torch_otel.config.output import expand_output, output_template
from torch_otel.config.specs import ExporterSpec, TlsFiles, spec_from_config
from torch_otel.config.values import Bounds, bounded_number
from torch_otel.errors import ConfigError

BUILTIN_PROFILES = ("console", "otlp-grpc", "otlp-http", "file", "none")


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
    output: str = ""
    """``TORCH_OTEL_OUTPUT`` as the profile was loaded with ({rank}/{pid} replaced)."""

    def to_cache(self) -> str:
        """JSON for ``TORCH_OTEL_RESOLVED_PROFILE`` (see :func:`load_profile`)."""
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
                "output": self.output,
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
            output=data.get("output", ""),
        )

    def for_output(self, output: str) -> Profile:
        """This profile (validated by another process, e.g. ``torch-otel run``) with the
        file paths its ``{rank}``/``{pid}`` gave there replaced by this process's."""
        if not self.output or not output or output == self.output:
            return self
        old = self.output

        def moved(spec: ExporterSpec) -> ExporterSpec:
            if spec.path is None or old not in spec.path:
                return spec
            path = spec.path.replace(old, output)
            if not Path(path).parent.is_dir():
                raise ConfigError(
                    env.TORCH_OTEL_OUTPUT, f"directory {str(Path(path).parent)!r} does not exist"
                )
            return replace(spec, path=path)

        return replace(
            self,
            exporters=[moved(spec) for spec in self.exporters],
            span_exporters=[moved(spec) for spec in self.span_exporters],
            metric_exporters=[(moved(spec), i) for spec, i in self.metric_exporters],
            output=output,
        )

    def describe(self) -> str:
        targets = "; ".join(spec.describe() for spec in self.exporters) or "no log exporter"
        return f"profile {self.name!r} ({self.path}): {targets}"


def _spec(item: dict[str, Any]) -> ExporterSpec:
    fields_ = dict(item)
    fields_["tls"] = TlsFiles(**fields_["tls"])
    return ExporterSpec(**fields_)


def profile_fingerprint(path: Path, environ: Mapping[str, str]) -> str:
    """Hash of the file and of the values of every ``${VAR}`` it references."""
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
    """Where the built-in profiles are: in the wheel ``torch_otel/profiles/`` (the
    repository's ``exporters/``, force-included), else the source checkout's."""
    packaged = Path(str(resources.files("torch_otel"))) / "profiles"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "exporters"


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
    return Path(name_or_path).expanduser()


def profile_environment(
    name_or_path: str,
    output: str | None,
    environ: Mapping[str, str],
    *,
    expand: bool = True,
    announce: bool = False,
) -> dict[str, str]:
    """``environ`` as the profile sees it: ``TORCH_OTEL_OUTPUT`` made absolute, and with
    ``expand`` its ``{rank}``/``{pid}`` replaced (``announce``: say so if no rank).

    The ``file`` profile's ``${TORCH_OTEL_OUTPUT}`` and every child process of
    ``torch-otel run`` must see the same absolute path, whatever their directory.
    """
    resolved = dict(environ)
    if output or env.TORCH_OTEL_OUTPUT in environ or name_or_path == "file":
        template = output_template(output, environ)
        resolved[env.TORCH_OTEL_OUTPUT] = (
            expand_output(template, environ, announce=announce) if expand else template
        )
    return resolved


def load_profile(
    name_or_path: str,
    *,
    environ: Mapping[str, str],
    output: str | None = None,
    use_cache: bool = True,
    strict: bool = False,
    announce: bool = False,
) -> Profile:
    """Load and validate a profile against ``environ``; every mistake raises ConfigError.

    ``environ`` is read, never written: ``${VAR}`` references resolve against it
    (with ``output``, the ``file`` profile's path, made absolute). A profile that
    ``torch-otel run`` already validated for this environment comes from
    ``TORCH_OTEL_RESOLVED_PROFILE`` (fingerprinted by the file's content and the
    variables it references) unless ``use_cache`` is false: every Python process
    of a job would otherwise pay a few hundred milliseconds for
    ``opentelemetry-configuration`` at start-up. The fingerprint takes the output
    path before ``{rank}``/``{pid}`` are replaced, and a cached profile gets this
    process's own path (:meth:`Profile.for_output`). ``announce``: say on stderr when
    ``{rank}`` falls back to 0.

    A built-in profile is read as plain data (:class:`ProfileView`): it ships with
    the package, and the test suite checks that it passes ``opentelemetry-configuration``
    and reads the same both ways, in every environment it tries. Importing and running
    that validator costs about 0.3 s, which ``torch-otel run`` would otherwise add to
    every job. Any other profile is validated by it (``strict`` does so for built-ins).
    """
    path = resolve_profile_path(name_or_path)
    template = profile_environment(name_or_path, output, environ, expand=False)
    environ = profile_environment(name_or_path, output, environ, announce=announce)
    output_now = environ.get(env.TORCH_OTEL_OUTPUT, "")
    cached = environ.get(env.TORCH_OTEL_RESOLVED_PROFILE) if use_cache else None
    if cached and path.is_file():
        try:
            parsed = json.loads(cached)
            fingerprint = profile_fingerprint(path, template)
            if parsed.get("fingerprint") == fingerprint and parsed.get("path") == str(path):
                return Profile.from_cache(parsed).for_output(output_now)
        except (OSError, ValueError, TypeError, KeyError):
            pass  # stale or foreign: load the file properly below
    from torch_otel.config.profile_file import ProfileView, load_validated, read_profile_data

    data = read_profile_data(path, environ)  # also refuses FIFOs, huge and hostile files
    fingerprint = profile_fingerprint(path, template)
    if name_or_path in BUILTIN_PROFILES and not strict:
        config: Any = ProfileView(data or {})
    else:
        config = _validated(load_validated, data, path)
    profile = _profile_from_config(config, name_or_path, path, fingerprint)
    profile.output = output_now
    return profile


def _validated(load: Any, data: Any, path: Path) -> Any:
    """The upstream typed model of ``data``; its errors as one ConfigError."""
    from opentelemetry.configuration import ConfigurationError

    try:
        return _load_quietly(load, data, path)
    except ConfigurationError as error:
        raise ConfigError(f"exporter profile {str(path)!r}", str(error)) from None
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"exporter profile {str(path)!r}", f"invalid configuration: {error}"
        ) from None


def _profile_from_config(config: Any, name: str, path: Path, fingerprint: str) -> Profile:
    if getattr(config, "disabled", None):
        return Profile(
            name=name, path=path, exporters=[], batch=BatchSettings(), fingerprint=fingerprint
        )
    exporters, batch = _log_exporters(config, path)
    return Profile(
        name=name,
        path=path,
        exporters=exporters,
        batch=batch,
        span_exporters=_span_exporters(config, path),
        metric_exporters=_metric_exporters(config, path),
        resource_attributes=_explicit_resource_attributes(config),
        fingerprint=fingerprint,
    )


def _log_exporters(config: Any, path: Path) -> tuple[list[ExporterSpec], BatchSettings]:
    exporters: list[ExporterSpec] = []
    batch = BatchSettings()
    provider = config.logger_provider
    for index, processor in enumerate(provider.processors if provider is not None else ()):
        setting = f"{path.name}: logger_provider.processors[{index}]"
        if processor.batch is not None:
            batch = _batch_settings(processor.batch, setting)
            block = processor.batch.exporter
        elif processor.simple is not None:
            # A simple processor exports on the emitting thread; the bridge
            # never does that, it exports as soon as possible instead.
            batch = BatchSettings(schedule_delay_s=0.05)
            block = processor.simple.exporter
        else:
            raise ConfigError(setting, "processor must be 'batch' or 'simple'")
        exporters.append(spec_from_config(block, f"{setting}.exporter"))
    return exporters, batch


def _span_exporters(config: Any, path: Path) -> list[ExporterSpec]:
    provider = config.tracer_provider
    specs: list[ExporterSpec] = []
    for index, processor in enumerate(provider.processors if provider is not None else ()):
        setting = f"{path.name}: tracer_provider.processors[{index}]"
        chosen = processor.batch or processor.simple
        if chosen is None:
            raise ConfigError(setting, "processor must be 'batch' or 'simple'")
        specs.append(spec_from_config(chosen.exporter, setting))
    return specs


def _metric_exporters(config: Any, path: Path) -> list[tuple[ExporterSpec, float]]:
    provider = config.meter_provider
    specs: list[tuple[ExporterSpec, float]] = []
    for index, reader in enumerate(provider.readers if provider is not None else ()):
        setting = f"{path.name}: meter_provider.readers[{index}]"
        if reader.periodic is None:
            raise ConfigError(setting, "only 'periodic' metric readers are supported")
        interval_s = (reader.periodic.interval or 60000) / 1000.0
        spec = spec_from_config(reader.periodic.exporter, f"{setting}.exporter")
        specs.append((spec, interval_s))
    return specs


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


BATCH_BOUNDS = {
    "schedule_delay": Bounds(0, 3_600_000, unit="ms"),
    "export_timeout": Bounds(0, 3_600_000, unit="ms"),
    "max_queue_size": Bounds(1, 10_000_000, unit="records"),
    "max_export_batch_size": Bounds(1, 1_000_000, unit="records"),
}
"""The accepted range of each ``batch`` setting of a profile (0 timeout: the default)."""


def _batch_settings(batch: Any, setting: str) -> BatchSettings:
    defaults = BatchSettings()
    values = {
        name: bounded_number(getattr(batch, name), f"{setting}.batch.{name}", bounds)
        for name, bounds in BATCH_BOUNDS.items()
    }
    delay, timeout = values["schedule_delay"], values["export_timeout"]
    return BatchSettings(
        schedule_delay_s=delay / 1000.0 if delay is not None else defaults.schedule_delay_s,
        export_timeout_s=timeout / 1000.0 if timeout else defaults.export_timeout_s,
        max_queue_records=values["max_queue_size"] or defaults.max_queue_records,
        max_batch_records=values["max_export_batch_size"] or defaults.max_batch_records,
    )


def _load_quietly(load: Any, *args: Any) -> Any:
    """Call the loader without its own error logging (we raise one clear error instead)."""
    import logging

    loader_logger = logging.getLogger("opentelemetry.configuration.file._loader")
    previous = loader_logger.disabled
    loader_logger.disabled = True
    try:
        return load(*args)
    finally:
        loader_logger.disabled = previous


def default_profile_name(environ: Mapping[str, str]) -> str:
    """The profile to use when none is named.

    ``TORCH_OTEL_EXPORTER`` wins; then ``OTEL_CONFIG_FILE``; then the protocol
    in ``OTEL_EXPORTER_OTLP_(LOGS_)PROTOCOL`` (``grpc`` -> ``otlp-grpc``,
    ``http/protobuf`` -> ``otlp-http``); otherwise ``otlp-grpc``, the
    OpenTelemetry Python default.
    """
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
