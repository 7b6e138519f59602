"""The OTel resource: who is exporting (service, process, rank, job).

Built from, in increasing priority: torch-otel's defaults (``service.name``
``torch-job``), the process detector, what the launcher's environment says
about the distributed job (torchrun/torchelastic, SLURM), the standard
``OTEL_RESOURCE_ATTRIBUTES`` / ``OTEL_SERVICE_NAME``, and finally the
profile's own ``resource`` section.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch_otel import environment_variables as env
from torch_otel import names


def distributed_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Rank, local rank, world size and job ids as the launcher's environment gives them.

    torchrun sets ``RANK``/``LOCAL_RANK``/``WORLD_SIZE``/``TORCHELASTIC_RUN_ID``;
    under plain ``srun`` the SLURM equivalents (``SLURM_PROCID``,
    ``SLURM_LOCALID``, ``SLURM_NTASKS``) are used instead.
    """
    environ = os.environ if environ is None else environ
    out: dict[str, Any] = {}

    def first_int(*names: str) -> int | None:
        for name in names:
            value = environ.get(name)
            if value is not None and value.strip().lstrip("-").isdigit():
                return int(value)
        return None

    rank = first_int(env.RANK, env.SLURM_PROCID)
    local_rank = first_int(env.LOCAL_RANK, env.SLURM_LOCALID)
    world_size = first_int(env.WORLD_SIZE, env.SLURM_NTASKS)
    if rank is not None:
        out[names.TORCH_DISTRIBUTED_RANK] = rank
    if local_rank is not None:
        out[names.TORCH_DISTRIBUTED_LOCAL_RANK] = local_rank
    if world_size is not None:
        out[names.TORCH_DISTRIBUTED_WORLD_SIZE] = world_size
    run_id = environ.get(env.TORCHELASTIC_RUN_ID)
    if run_id:
        out[names.TORCH_ELASTIC_RUN_ID] = run_id
    job_id = environ.get(env.SLURM_JOB_ID)
    if job_id:
        out[names.SLURM_JOB_ID] = job_id
    return out


def missing_job_attributes(provider: Any, environ: Mapping[str, str]) -> dict[str, Any]:
    """With the application's provider (whose resource is its own): the launcher's rank,
    local rank, world size and job ids that resource lacks, to put on every record."""
    if provider is None:
        return {}
    resource = getattr(getattr(provider, "resource", None), "attributes", {})
    return {k: v for k, v in distributed_environment(environ).items() if k not in resource}


def build_resource(
    *,
    service_name: str | None = None,
    profile_attributes: Mapping[str, Any] | None = None,
) -> Any:
    """Create the SDK ``Resource`` for this process (call again after ``fork``)."""
    from opentelemetry.sdk.resources import (
        SERVICE_NAME,
        OTELResourceDetector,
        ProcessResourceDetector,
        Resource,
    )

    # Not Resource.create(): it runs detectors on a thread pool, which fails when
    # the first record is mapped during interpreter shutdown.
    resource = Resource(
        {
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": _sdk_version(),
            SERVICE_NAME: names.DEFAULT_SERVICE_NAME,
        }
    )
    resource = resource.merge(ProcessResourceDetector().detect())
    resource = resource.merge(Resource(distributed_environment()))
    # The standard variables must win over our detection.
    resource = resource.merge(OTELResourceDetector().detect())
    if os.environ.get(env.OTEL_SERVICE_NAME):
        resource = resource.merge(Resource({SERVICE_NAME: os.environ[env.OTEL_SERVICE_NAME]}))
    if profile_attributes:
        resource = resource.merge(Resource(dict(profile_attributes)))
    if service_name:
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    return resource


def _sdk_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("opentelemetry-sdk")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"
