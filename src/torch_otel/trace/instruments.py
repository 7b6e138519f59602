"""Creating the OTel instruments torch-otel records into, from their one definition.

Name, kind, unit and description of every metric are in ``names.METRICS``; this is
the only place that turns them into instruments, so compile health and ``--trace``
telemetry can never create the same metric two different ways.
"""

from __future__ import annotations

from typing import Any

from torch_otel import names


def create_instrument(meter: Any, name: str) -> Any:
    """The instrument for metric ``name`` (a counter, up-down counter or histogram)."""
    spec = names.METRIC_SPECS[name]
    if spec.kind == "counter":
        return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
    if spec.kind == "up_down_counter":
        return meter.create_up_down_counter(spec.name, unit=spec.unit, description=spec.description)
    return meter.create_histogram(
        spec.name,
        unit=spec.unit,
        description=spec.description,
        explicit_bucket_boundaries_advisory=list(names.DURATION_BUCKETS_S),
    )
