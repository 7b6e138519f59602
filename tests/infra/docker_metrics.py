"""Static checks of docker/'s metrics side: collector prometheus exporter -> Prometheus ->
Grafana's provisioned "torch.compile health" dashboard.

Used by ``test_docker_static.py`` (on the real files and on broken copies). The metric
names a dashboard may query are derived from ``torch_otel.names.METRICS`` the way the
collector's prometheus exporter names them, never typed in by hand here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from torch_otel import names

PROMETHEUS_IMAGE = "prom/prometheus"
GRAFANA_IMAGE = "grafana/grafana"
DASHBOARD_TITLE = "torch.compile health"
DEFAULT_PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"
PROMETHEUS_PORT = 9090
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"
STANDARD_LABELS = {"job", "instance", "le", "__name__"}
UNIT_SUFFIXES = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "ratio"}
"""The unit suffixes of the collector's Prometheus translation that torch-otel's units use;
units in braces (``{compile}``) are annotations and add nothing."""


def prometheus_names(spec: names.MetricSpec) -> set[str]:
    """The series names the collector's prometheus exporter gives an OTel instrument."""
    base = re.sub(r"[^a-zA-Z0-9_]", "_", spec.name)
    unit = "" if spec.unit.startswith("{") else UNIT_SUFFIXES.get(spec.unit, spec.unit)
    if unit and not base.endswith("_" + unit):
        base = f"{base}_{unit}"
    if spec.kind == "counter":
        return {f"{base}_total"}
    if spec.kind == "histogram":
        return {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return {base}  # up-down counter: a gauge


def emitted_series() -> dict[str, str]:
    """Every Prometheus series name the bridge's metrics produce -> the OTel metric name."""
    return {series: spec.name for spec in names.METRICS for series in prometheus_names(spec)}


def attribute_labels() -> set[str]:
    """Label names the bridge's attributes become (dots to underscores)."""
    attributes = [*names.record_attribute_names(), *names.metric_attribute_names()]
    return {re.sub(r"[^a-zA-Z0-9_]", "_", name) for name in attributes}


def _static():  # type: ignore[no-untyped-def]
    from infra import test_docker_static

    return test_docker_static


def service_with_image(stack: Any, image: str) -> tuple[str, dict[str, Any]]:
    static = _static()
    found = [
        (name, svc)
        for name, svc in stack.services.items()
        if static.image_tag(str(static.interpolate(svc.get("image", ""))))[0] == image
    ]
    assert len(found) == 1, f"expected one {image} service in compose, found {len(found)}"
    return found[0]


def mounted_file(stack: Any, service: dict[str, Any], target: str) -> Path:
    """The host path compose mounts at ``target`` (a file, or inside a mounted folder)."""
    static = _static()
    for mount in static.service_mounts(service):
        if not mount.is_bind:
            continue
        inside = PurePosixPath(target)
        mounted = PurePosixPath(mount.target)
        if inside == mounted or mounted in inside.parents:
            host = (stack.compose_dir / mount.source).resolve()
            path = host / inside.relative_to(mounted)
            assert path.exists(), f"{target} is mounted from {path}, which does not exist"
            return path
    raise AssertionError(f"nothing is mounted at {target}")


def check_prometheus_scrapes_collector(stack: Any) -> Path:
    """Collector prometheus exporter in the metrics pipeline <- Prometheus's scrape target."""
    static = _static()
    config = stack.collector_config
    exporters = {
        eid: cfg or {}
        for eid, cfg in (config.get("exporters") or {}).items()
        if static.component_type(eid) == "prometheus"
    }
    assert len(exporters) == 1, "the collector config needs one prometheus exporter"
    ((exporter_id, exporter),) = exporters.items()
    pipelines = (config.get("service") or {}).get("pipelines") or {}
    assert any(
        static.component_type(name) == "metrics" and exporter_id in (p or {}).get("exporters", [])
        for name, p in pipelines.items()
    ), f"no metrics pipeline exports to {exporter_id}"
    assert exporter.get("add_metric_suffixes", True) is not False, (
        "add_metric_suffixes: false changes the names the dashboard queries"
    )
    host, port = static.host_port(str(exporter.get("endpoint", "")))
    assert host in static.WILDCARD_HOSTS, f"{exporter_id} listens on {host!r}: unreachable"

    collector_name, _ = stack.collector()
    name, prometheus = service_with_image(stack, PROMETHEUS_IMAGE)
    args = static.as_args(prometheus.get("command"))
    config_path = next(
        (a.split("=", 1)[1] for a in args if a.startswith("--config.file=")),
        DEFAULT_PROMETHEUS_CONFIG,
    )
    prometheus_config = mounted_file(stack, prometheus, config_path)
    scrape = yaml.safe_load(prometheus_config.read_text())
    targets = {
        target
        for job in scrape.get("scrape_configs") or []
        for static_config in job.get("static_configs") or []
        for target in static_config.get("targets") or []
    }
    assert f"{collector_name}:{port}" in targets, (
        f"{name} scrapes {sorted(targets)}, not the collector's exporter {collector_name}:{port}"
    )
    return prometheus_config


def _grafana_files(stack: Any, service: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    folder = mounted_file(stack, service, f"{GRAFANA_PROVISIONING}/{kind}")
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    assert files, f"no {kind} provisioning file in {folder}"
    return [yaml.safe_load(path.read_text()) for path in files]


def check_grafana_provisioning(stack: Any) -> list[Path]:
    """Datasource -> the Prometheus service; dashboard provider -> the mounted JSON files."""
    prometheus_name, _ = service_with_image(stack, PROMETHEUS_IMAGE)
    _, grafana = service_with_image(stack, GRAFANA_IMAGE)
    sources = [
        source
        for document in _grafana_files(stack, grafana, "datasources")
        for source in document.get("datasources") or []
    ]
    prometheus_sources = [s for s in sources if s.get("type") == "prometheus"]
    assert prometheus_sources, "no prometheus datasource is provisioned"
    for source in prometheus_sources:
        assert source.get("url") == f"http://{prometheus_name}:{PROMETHEUS_PORT}", (
            f"datasource {source.get('name')} points at {source.get('url')}"
        )
    uids = {s.get("uid") for s in prometheus_sources}
    dashboards: list[Path] = []
    for document in _grafana_files(stack, grafana, "dashboards"):
        for provider in document.get("providers") or []:
            path = (provider.get("options") or {}).get("path")
            assert path, f"dashboard provider {provider.get('name')} has no options.path"
            folder = mounted_file(stack, grafana, path)
            dashboards.extend(sorted(folder.glob("*.json")))
    assert dashboards, "no dashboard JSON where the providers look"
    titles = set()
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        titles.add(dashboard.get("title"))
        for panel in dashboard.get("panels") or []:
            uid = (panel.get("datasource") or {}).get("uid")
            assert uid in uids, f"{path.name}: panel {panel.get('title')!r} uses datasource {uid}"
    assert DASHBOARD_TITLE in titles, f"no {DASHBOARD_TITLE!r} dashboard among {titles}"
    return dashboards


_SERIES = re.compile(r"\b(torch_[a-z0-9_]+)\b")
_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")


def dashboard_queries(path: Path) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) of every panel target and template query."""
    dashboard = json.loads(path.read_text())
    queries = [
        (panel.get("title", "?"), target["expr"])
        for panel in dashboard.get("panels") or []
        for target in panel.get("targets") or []
        if target.get("expr")
    ]
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if text:
            queries.append((f"variable {variable.get('name')}", str(text)))
    return queries


def check_dashboard_queries(path: Path) -> set[str]:
    """Every query names a series the bridge emits, and groups by labels it sets."""
    series = emitted_series()
    labels = attribute_labels() | STANDARD_LABELS
    dashboard = json.loads(path.read_text())
    for panel in dashboard.get("panels") or []:
        assert any(t.get("expr") for t in panel.get("targets") or []), (
            f"{path.name}: panel {panel.get('title')!r} has no query"
        )
    used: set[str] = set()
    for title, expr in dashboard_queries(path):
        named = _SERIES.findall(expr)
        assert named, f"{path.name}: {title!r} queries no torch-otel metric: {expr}"
        for name in named:
            if name in labels:
                continue  # a label such as torch_compile_phase, not a series
            assert name in series, (
                f"{path.name}: {title!r} queries {name}, which the bridge does not emit "
                f"(it emits {sorted(series)})"
            )
            used.add(series[name])
        grouped = [label.strip() for group in _BY.findall(expr) for label in group.split(",")]
        for label in [*grouped, *_MATCHER.findall(expr)]:
            if label:
                assert label in labels, f"{path.name}: {title!r} uses unknown label {label}"
    return used
