"""``torch-otel doctor``: what would happen if the bridge were installed here, now.

Prints the effective configuration (profile, endpoint, protocol, TLS, header
*names*, bounds), what torch's logging has enabled in this environment, and
whether each OTLP endpoint answers an (empty) export request. Secrets are
never printed: header values and URL passwords are redacted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, TextIO

from torch_otel import __version__
from torch_otel import environment_variables as env
from torch_otel.capture import _torch
from torch_otel.cli.options import bridge_options, validate_torch_logs_early
from torch_otel.config.profiles import default_profile_name, load_profile
from torch_otel.config.settings import BridgeSettings
from torch_otel.config.specs import OTLP_KINDS, ExporterSpec
from torch_otel.redaction import REDACTED, redact_url

EXIT_OK = 0
EXIT_UNREACHABLE = 1


def redacted_headers(value: str | None) -> str:
    """Header names only: ``authorization=<redacted>, x-tenant=<redacted>``."""
    if not value:
        return "(none)"
    names = [item.split("=", 1)[0].strip() for item in value.split(",") if item.strip()]
    return ", ".join(f"{name}={REDACTED}" for name in names)


def probe_endpoint(spec: ExporterSpec, timeout_s: float = 3.0) -> tuple[bool, str]:
    """Send an empty OTLP export request; does the endpoint answer it?"""
    from dataclasses import replace

    from torch_otel.export.exporters import build_log_sink
    from torch_otel.export.files import OutputFiles
    from torch_otel.export.sink import EncodedLogsRequest

    sink = build_log_sink(replace(spec, timeout_s=timeout_s), OutputFiles())
    started = time.monotonic()
    try:
        result = sink.export(EncodedLogsRequest(b"", 0))
    finally:
        sink.shutdown()
    elapsed_ms = (time.monotonic() - started) * 1000
    if result.delivered:
        return True, f"answers (empty export accepted in {elapsed_ms:.0f} ms)"
    return False, f"does not answer: {sink.last_error or result.outcome.value}"


def doctor_command(args: argparse.Namespace) -> int:
    validate_torch_logs_early()
    return run_doctor(sys.stdout, check_endpoint=not args.no_check, arguments=bridge_options(args))


def run_doctor(
    out: TextIO, *, check_endpoint: bool = True, arguments: dict[str, Any] | None = None
) -> int:
    """Print the report; exit status 1 when an OTLP endpoint does not answer."""
    settings = BridgeSettings.resolve(arguments or {}, os.environ)
    profile = load_profile(
        settings.exporter or default_profile_name(os.environ),
        environ=os.environ,
        output=settings.output,
    )
    from importlib.metadata import version

    import torch

    def write(text: str = "") -> None:
        print(text, file=out)

    write("torch-otel doctor")
    write(
        f"  versions    torch-otel {__version__}, torch {torch.__version__}, "
        f"opentelemetry-sdk {version('opentelemetry-sdk')}"
    )
    write(f"  profile     {profile.name} ({profile.path})")
    if not profile.exporters:
        write("  exporters   none (the bridge would not attach to torch's loggers)")
    for spec in profile.exporters:
        write(f"  exporter    {spec.describe()}")
    mib = 2**20
    records = settings.max_queue_records or profile.batch.max_queue_records
    write(
        f"  settings    console={'on' if settings.console else 'off'}, "
        f"trace={'on' if settings.trace else 'off'}, "
        f"dedup={f'on (>= {settings.dedup_min_bytes} B)' if settings.dedup else 'off'}, "
        f"queue {records} records / {settings.max_queue_bytes // mib} MiB, "
        f"request {settings.max_batch_bytes // mib} MiB, "
        f"chunk {settings.max_body_bytes // mib} MiB, "
        f"flush deadline {settings.flush_timeout_s:g} s"
    )
    if not settings.compile_metrics:
        health = "off (TORCH_OTEL_COMPILE_METRICS=0)"
    elif not profile.metric_exporters:
        health = "off (the profile has no meter_provider)"
    else:
        health = f"on, slow compile after {settings.slow_compile_s:g} s"
    write(f"  compile     health metrics {health}")
    write(
        f"  headers     OTEL_EXPORTER_OTLP_HEADERS: "
        f"{redacted_headers(os.environ.get(env.OTEL_EXPORTER_OTLP_HEADERS))}"
    )
    write(f"  TORCH_LOGS  {os.environ.get(env.TORCH_LOGS, '(unset)')!r}")
    components, artifacts = _torch.enabled_logging()
    shown = ", ".join(f"{name}={level}" for name, level in sorted(components.items())) or "none"
    write(f"  enabled     components: {shown}")
    write(f"              artifacts: {', '.join(artifacts) or 'none'}")
    status = EXIT_OK
    for spec in profile.exporters:
        if spec.kind not in OTLP_KINDS:
            continue
        if not check_endpoint:
            write("  endpoint    not checked")
            continue
        ok, message = probe_endpoint(spec)
        write(f"  endpoint    {redact_url(spec.endpoint or '')}: {message}")
        if not ok:
            status = EXIT_UNREACHABLE
    return status
