"""End to end: real torch.compile runs, bridged to the OTLP/JSON ``file`` profile.

Each module-scoped run is a fresh interpreter running
``workloads/compile_workload.py`` (a training step with a graph break and two
recompiles, a DDP-wrapped compiled model on gloo, and torch's own ``graph`` and
``schedule`` artifact loggers, which have no emitter on CPU). Tests then check
what was exported, and compare it with what torch printed on stderr.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from helpers.processes import ENVIRONMENT_FILES, Run, run_workload
from helpers.torch_stderr import expected_torch_lines, parse_torch_stderr

pytestmark = pytest.mark.compile

# The components and artifacts the seed documentation lists, with the component
# each artifact's logger belongs to under the contract's rule.
SEED_COMPONENTS = ("dynamo", "aot", "inductor")
SEED_ARTIFACTS = {
    "bytecode": "dynamo",
    "aot_graphs": "aot",
    "aot_joint_graph": "aot",
    "ddp_graphs": "ddp",
    "graph": "dynamo",
    "graph_code": "dynamo",
    "guards": "dynamo",
    "recompiles": "dynamo",
    "output_code": "inductor",
    "schedule": "inductor",
}
STEPS = "main,ddp,torch_own"
BROAD_TORCH_LOGS = "+dynamo,+aot,+inductor," + ",".join(SEED_ARTIFACTS)


@pytest.fixture(scope="module")
def broad_env_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Everything the seed documents enabled through TORCH_LOGS; torch's console kept."""
    return run_workload(
        tmp_path_factory.mktemp("broad_env"),
        "--steps",
        STEPS,
        env={"TORCH_LOGS": BROAD_TORCH_LOGS},
    )


@pytest.fixture(scope="module")
def broad_set_logs_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The same, enabled through torch._logging.set_logs() inside the script."""
    settings = {name: "DEBUG" for name in SEED_COMPONENTS}
    settings.update({name: True for name in SEED_ARTIFACTS})
    return run_workload(
        tmp_path_factory.mktemp("broad_set_logs"),
        "--steps",
        STEPS,
        "--set-logs",
        json.dumps(settings),
    )


@pytest.fixture(scope="module")
def nothing_enabled_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_workload(tmp_path_factory.mktemp("nothing"), "--steps", STEPS)


@pytest.fixture(scope="module")
def aot_only_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_workload(
        tmp_path_factory.mktemp("aot_only"), "--steps", STEPS, env={"TORCH_LOGS": "+aot"}
    )


@pytest.mark.parametrize("how", ["TORCH_LOGS", "set_logs"])
@pytest.mark.parametrize("artifact", sorted(SEED_ARTIFACTS))
def test_enabled_artifact_is_exported_with_its_component(
    request: pytest.FixtureRequest, how: str, artifact: str
) -> None:
    run = request.getfixturevalue("broad_env_run" if how == "TORCH_LOGS" else "broad_set_logs_run")
    records = run.by_artifact(artifact)
    assert records, f"no {artifact!r} record exported (artifacts seen: {sorted(run.artifacts())})"
    components = {r.attributes["torch.component"] for r in records}
    assert components == {SEED_ARTIFACTS[artifact]}
    for record in records:
        assert record.scope.endswith(f".__{artifact}")  # scope = torch's artifact logger


@pytest.mark.parametrize("how", ["TORCH_LOGS", "set_logs"])
@pytest.mark.parametrize("component", SEED_COMPONENTS)
def test_enabled_component_is_exported(
    request: pytest.FixtureRequest, how: str, component: str
) -> None:
    run = request.getfixturevalue("broad_env_run" if how == "TORCH_LOGS" else "broad_set_logs_run")
    plain = [
        r
        for r in run.records
        if r.attributes["torch.component"] == component and "torch.artifact" not in r.attributes
    ]
    assert plain, f"no plain {component!r} record exported"
    assert {r.severity_text for r in plain} >= {"DEBUG"}


def test_nothing_enabled_exports_nothing(nothing_enabled_run: Run) -> None:
    assert nothing_enabled_run.compile_records == []
    printed = parse_torch_stderr(nothing_enabled_run.stderr)
    assert [line for line in printed if line.file not in ENVIRONMENT_FILES] == []


def test_only_the_enabled_component_is_exported(aot_only_run: Run) -> None:
    components = Counter(r.attributes["torch.component"] for r in aot_only_run.compile_records)
    assert components["aot"] > 0
    assert set(components) == {"aot"}, components
    # aot at DEBUG turns on aot's own (not off-by-default) artifacts and nothing else.
    assert aot_only_run.artifacts() <= {"aot_graphs", "aot_joint_graph"}
    for artifact, component in SEED_ARTIFACTS.items():
        if component != "aot":
            assert not aot_only_run.by_artifact(artifact), artifact


def test_exported_records_equal_what_torch_printed(broad_env_run: Run) -> None:
    """Parity: line for line, the records torch printed are the records exported."""
    printed = Counter(parse_torch_stderr(broad_env_run.stderr))
    exported = Counter(line for r in broad_env_run.records for line in expected_torch_lines(r))
    assert sum(printed.values()) > 1000
    missing = printed - exported
    extra = exported - printed
    assert not missing, f"printed but not exported: {list(missing)[:3]}"
    assert not extra, f"exported but not printed: {list(extra)[:3]}"
    # Every line carries its record's time stamp (ms) and call site, so a record
    # exported twice, or not at all, shows up above as extra or missing lines.
    print(
        f"parity: {len(broad_env_run.records)} records, {sum(printed.values())} stderr lines "
        "compared"
    )


def test_record_attributes_follow_the_contract(broad_env_run: Run) -> None:
    records = broad_env_run.records
    for record in records:
        attributes = record.attributes
        assert attributes["torch.component"]
        assert attributes["code.file.path"].endswith(".py")
        assert isinstance(attributes["code.line.number"], int)
        assert attributes["code.function.name"]
        assert isinstance(attributes["thread.id"], int)
        assert attributes["thread.name"] == "MainThread"
        assert record.severity_text in {"DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
        assert (
            record.severity_number
            == {
                "DEBUG": 5,
                "INFO": 9,
                "WARN": 13,
                "ERROR": 17,
                "FATAL": 21,
            }[record.severity_text]
        )
        assert record.resource["service.name"] == "torch-job"
        assert isinstance(record.resource["process.pid"], int)
    guards = broad_env_run.by_artifact("guards")
    assert all(not r.body.startswith(("V1", "I1")) for r in guards)  # no glog prefix
    compile_ids = {r.attributes["torch.compile.trace_id"] for r in guards}
    assert "1/0" in compile_ids and len(compile_ids) >= 3, compile_ids
    assert any("_" in trace_id for trace_id in compile_ids)  # a restarted attempt (0/0_1)
    for record in guards:
        frame, frame_compile = record.attributes["torch.compile.trace_id"].split("_")[0].split("/")
        assert record.attributes["torch.compile.frame_id"] == int(frame)
        assert record.attributes["torch.compile.frame_compile_id"] == int(frame_compile)
        assert isinstance(record.attributes["torch.compile.attempt"], int)
    recompiles = broad_env_run.by_artifact("recompiles")
    assert any("scale" in r.body for r in recompiles)
    assert any(r.attributes["torch.compile.trace_id"].endswith("/1") for r in recompiles)


def test_ddp_records_carry_the_rank(broad_env_run: Run) -> None:
    ddp_records = broad_env_run.by_artifact("ddp_graphs")
    assert ddp_records
    assert {r.attributes.get("torch.distributed.rank") for r in ddp_records} == {0}


def test_no_traceback_and_clean_exit(broad_env_run: Run, broad_set_logs_run: Run) -> None:
    for run in (broad_env_run, broad_set_logs_run):
        assert "Traceback" not in run.stderr
        assert "torch-otel:" not in run.stderr  # nothing dropped, nothing to report


@pytest.fixture(scope="module")
def phases_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, dict[str, int]]:
    tmp = tmp_path_factory.mktemp("phases")
    marks_path = tmp / "marks.json"
    run = run_workload(tmp, "--steps", "phases", "--marks", str(marks_path))
    marks = {m["phase"]: m["time_ns"] for m in json.loads(marks_path.read_text())}
    return run, marks


def _between(records: list, start: int, end: int) -> list:
    return [r for r in records if start <= r.time_unix_nano < end]


def test_set_logs_mid_run_is_honoured_at_each_step(phases_run: tuple[Run, dict[str, int]]) -> None:
    run, marks = phases_run
    records = run.compile_records
    first = _between(records, marks["guards_on"], marks["all_off"])
    second = _between(records, marks["all_off"], marks["recompiles_on"])
    third = _between(records, marks["recompiles_on"], marks["end"])
    assert len(first) + len(second) + len(third) == len(records)
    assert first and {r.attributes.get("torch.artifact") for r in first} == {"guards"}
    assert second == []
    assert third and {r.attributes.get("torch.artifact") for r in third} == {"recompiles"}
    assert any("n == 1" in r.body or "L['n']" in r.body for r in third)


def test_torch_logs_makes_set_logs_a_no_op(tmp_path: Path) -> None:
    run = run_workload(
        tmp_path,
        "--steps",
        "main",
        "--set-logs",
        json.dumps({"guards": True}),
        env={"TORCH_LOGS": "recompiles"},
    )
    assert run.by_artifact("recompiles")
    assert not run.by_artifact("guards")
    # torch's own warning about the ignored call is a torch record too, and is exported.
    warnings = [r for r in run.records if r.severity_text == "WARN"]
    assert any("ignoring call to set_logs" in r.body for r in warnings)
    assert {r.attributes["torch.component"] for r in warnings} == {"torch"}
