"""Fleet scale: many ranks through a real collector, cross-rank de-duplication, per-rank
files, multi-rank tlparse.

Every multi-rank job here runs under ``torchrun`` (gloo, CPU) with ``torch-otel run``
and sends through Rotel (a real OTLP collector, ``infra/rotel.py``) to the loopback
receiver; what the receiver got is written back as OTLP/JSON lines (what a
collector's file exporter stores) for ``summary`` and ``to-tlparse``. The workload
(``fleet_ranks.py``) compiles the same model on every rank and, on rank 1 only, a
function of its own. ``torch.compile`` also writes torch's own ``TORCH_TRACE``
files, the reference the rebuilt ones must equal byte for byte.

Found on torch 2.13: ``graph_code`` and ``bytecode`` bodies carry a random
``__compiled_fn_N_<uuid4>`` name and ``guards`` carry object ids, so they differ
from rank to rank and are (rightly) not de-duplicated; AOT graphs and the
structured-trace payloads are identical across ranks.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from helpers.processes import REPO, TORCH_OTEL, clean_env, run_python
from infra.otlp_receiver import LogRecordView, OtlpReceiver
from infra.rotel import Rotel
from torch_otel.cli.otlp_json import read_log_records
from torch_otel.export.dedup import KEY_PREFIX

pytestmark = pytest.mark.compile

BIN = Path(sys.executable).parent
TLPARSE = BIN / "tlparse"
FLEET = REPO / "tests" / "workloads" / "fleet_ranks.py"
STORE_WORKLOAD = REPO / "tests" / "workloads" / "dedup_store.py"
LOGS = "graph_code,aot_graphs,guards,bytecode"
SHA = "torch.artifact.sha256"
REF = "torch.artifact.body_ref"
RANK = "torch.distributed.rank"
TRACE_PREFIX = "dedicated_log_torch_trace_"


@dataclass
class Job:
    records: list[LogRecordView]
    collected: Path  # the receiver's log requests as OTLP/JSON lines
    native: Path  # torch's own TORCH_TRACE directory
    stderr: str

    def logical(self) -> list[LogRecordView]:
        """One record per torch record (a chunked body counts once)."""
        chunk = "torch.artifact.chunk.index"
        return [r for r in self.records if r.attributes.get(chunk) in (None, 0)]

    def counts(self) -> Counter[tuple[Any, str]]:
        return Counter(
            (r.resource.get(RANK), r.attributes.get("torch.artifact") or r.event_name)
            for r in self.logical()
        )


def write_jsonl(messages: list[Any], path: Path) -> Path:
    path.write_text("".join(json_format.MessageToJson(m, indent=None) + "\n" for m in messages))
    return path


def torchrun_through_rotel(
    tmp: Path, nproc: int, *options: str, env: dict[str, str] | None = None
) -> Job:
    """``torch-otel run [options] -- torchrun ... fleet_ranks.py``, exported through Rotel
    (``options`` come last, so an ``--exporter`` among them wins)."""
    native = tmp / "native"
    with OtlpReceiver(grpc_max_receive_bytes=64 << 20) as receiver:
        with Rotel(receiver.grpc_endpoint) as rotel:
            run = run_python(
                [
                    *TORCH_OTEL, "run", "--exporter", "otlp-grpc", "--no-console", "--trace",
                    *options, "--", str(BIN / "torchrun"), "--standalone", "--nproc-per-node",
                    str(nproc), str(FLEET),
                ],
                env={
                    "OTEL_EXPORTER_OTLP_ENDPOINT": rotel.grpc_endpoint,
                    "TORCH_LOGS": LOGS,
                    "TORCH_TRACE": str(native),
                    "TORCH_OTEL_DEDUP_MIN_BYTES": "512",
                    "OMP_NUM_THREADS": "1",
                    **(env or {}),
                },
                timeout=900,
            )  # fmt: skip
            assert run.returncode == 0, run.stderr[-4000:]
        # Rotel has stopped (flushing what it held): everything is at the receiver.
        messages = [request.message for request in receiver.received("logs")]
        records = receiver.log_records()
    return Job(records, write_jsonl(messages, tmp / "collected.jsonl"), native, run.stderr)


@pytest.fixture(scope="module")
def full_job(tmp_path_factory: pytest.TempPathFactory) -> Job:
    return torchrun_through_rotel(tmp_path_factory.mktemp("full"), 4)


@pytest.fixture(scope="module")
def dedup_job(tmp_path_factory: pytest.TempPathFactory) -> Job:
    return torchrun_through_rotel(
        tmp_path_factory.mktemp("dedup"), 4, "--dedup", env={"TORCH_OTEL_DEBUG": "1"}
    )


def publishers(job: Job) -> dict[str, list[LogRecordView]]:
    out: dict[str, list[LogRecordView]] = {}
    for record in job.logical():
        if SHA in record.attributes and REF not in record.attributes:
            out.setdefault(record.attributes[SHA], []).append(record)
    return out


def test_every_record_arrives_and_identical_bodies_arrive_once(
    full_job: Job, dedup_job: Job
) -> None:
    counts = dedup_job.counts()
    assert counts == full_job.counts()
    assert {0, 1, 2, 3} <= {rank for rank, _ in counts}
    assert "no torch.distributed process group" not in dedup_job.stderr

    published = publishers(dedup_job)
    assert all(len(records) == 1 for records in published.values())  # each body sent once
    references = [r for r in dedup_job.records if REF in r.attributes]
    assert references and all(r.body == "" for r in references)
    assert {r.attributes[REF] for r in references} <= set(published)
    assert all(r.attributes[SHA] == r.attributes[REF] for r in references)
    assert len({r.resource[RANK] for r in references}) >= 3  # ranks that sent no body

    # AOT graphs are identical on all four ranks: four copies without dedup, one with.
    full_aot = Counter(
        r.body for r in full_job.records if r.attributes.get("torch.artifact") == "aot_graphs"
    )
    shared = [body for body, copies in full_aot.items() if copies == 4 and len(body) >= 512]
    assert shared
    for body in shared:
        digest = hashlib.sha256(body.encode()).hexdigest()
        assert [r.body for r in dedup_job.records if r.body == body] == [body]
        assert len(published[digest]) == 1
        assert sum(r.attributes.get(REF) == digest for r in dedup_job.records) >= 3

    # The divergent function (rank 1, frame 1): its own bodies (those no other rank logs,
    # e.g. its AOT graphs; some of its records, such as generic trace payloads, match
    # other ranks' and are rightly shared) are sent in full, by rank 1.
    def own_bodies(job: Job) -> set[str]:
        def digests(records: list[LogRecordView]) -> set[str]:
            return {r.attributes[SHA] for r in records if SHA in r.attributes}

        divergent = [
            r
            for r in job.logical()
            if r.resource[RANK] == 1 and r.attributes.get("torch.compile.frame_id") == 1
        ]
        others = [r for r in job.logical() if r.resource.get(RANK) != 1]
        return digests(divergent) - digests(others)

    def digest_of(record: LogRecordView) -> str | None:
        if isinstance(record.body, str) and len(record.body.encode()) >= 512:
            return hashlib.sha256(record.body.encode()).hexdigest()
        return None

    full_divergent = {
        digest_of(r)
        for r in full_job.logical()
        if r.resource[RANK] == 1 and r.attributes.get("torch.compile.frame_id") == 1
    } - {digest_of(r) for r in full_job.logical() if r.resource.get(RANK) != 1}
    own = own_bodies(dedup_job)
    assert own & full_divergent  # the same divergent artifacts as in the full run
    for digest in own:
        (source,) = published[digest]
        assert source.resource[RANK] == 1 and source.body
        assert all(
            r.resource[RANK] == 1 for r in dedup_job.records if r.attributes.get(REF) == digest
        )

    def body_bytes(job: Job) -> int:
        return sum(len(r.body.encode()) for r in job.records if isinstance(r.body, str))

    assert body_bytes(dedup_job) < body_bytes(full_job)


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*TORCH_OTEL, *map(str, args)], env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result


def without_references(collected: Path, out: Path) -> Path:
    """The collected data as a run without dedup would have sent it: every reference
    replaced by its body, no hashes (resolved here independently of the CLI)."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    messages = [
        json_format.Parse(line, ExportLogsServiceRequest())
        for line in collected.read_text().splitlines()
    ]
    bodies = {
        kv.value.string_value: record.body.string_value
        for message in messages
        for resource_logs in message.resource_logs
        for scope_logs in resource_logs.scope_logs
        for record in scope_logs.log_records
        for kv in record.attributes
        if kv.key == SHA and REF not in {a.key for a in record.attributes}
    }
    for message in messages:
        for resource_logs in message.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    keys = {kv.key: kv.value.string_value for kv in record.attributes}
                    if REF in keys:
                        record.body.string_value = bodies[keys[REF]]
                    kept = [kv for kv in record.attributes if kv.key not in (SHA, REF)]
                    del record.attributes[:]
                    record.attributes.extend(kept)
    return write_jsonl(messages, out)


def tables(summary: str) -> list[str]:
    """The summary without its first line (the number of export requests depends on
    batching) and its last table (sizes of bodies with object ids may differ by a
    byte between two runs)."""
    return summary.split("\n\nlargest")[0].splitlines()[1:]


def test_summary_equals_a_run_without_dedup(full_job: Job, dedup_job: Job, tmp_path: Path) -> None:
    deduplicated = cli("summary", dedup_job.collected)
    expanded = cli("summary", without_references(dedup_job.collected, tmp_path / "x.jsonl"))
    assert deduplicated.stdout == expanded.stdout  # the same data, sent without dedup
    assert deduplicated.stderr == ""
    assert tables(deduplicated.stdout) == tables(cli("summary", full_job.collected).stdout)


def rank_of(path: Path) -> int:
    return int(path.name.removeprefix(TRACE_PREFIX + "rank_").split("_")[0])


def test_to_tlparse_rebuilds_torchs_files_per_rank_and_tlparse_reads_all_ranks(
    full_job: Job, dedup_job: Job, tmp_path: Path
) -> None:
    rebuilt = tmp_path / "rebuilt"
    result = cli("to-tlparse", dedup_job.collected, "-o", rebuilt)
    assert result.stderr == ""
    files = sorted(rebuilt.glob(f"{TRACE_PREFIX}rank_*.log"))
    natives = {rank_of(p): p for p in dedup_job.native.glob(f"{TRACE_PREFIX}rank_*.log")}
    assert sorted(natives) == [0, 1, 2, 3]
    assert sorted(map(rank_of, files)) == [0, 1, 2, 3]  # one file per rank
    for path in files:
        assert path.read_bytes() == natives[rank_of(path)].read_bytes(), path.name

    full = tmp_path / "full"
    cli("to-tlparse", full_job.collected, "-o", full)
    for path in files:
        (other,) = full.glob(f"{TRACE_PREFIX}rank_{rank_of(path)}_*.log")
        assert len(other.read_text().splitlines()) == len(path.read_text().splitlines())

    report = tmp_path / "report"
    tlparse = subprocess.run(
        [str(TLPARSE), str(rebuilt), "--all-ranks-html", "-o", str(report), "--no-browser"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tlparse.returncode == 0, tlparse.stderr
    assert (report / "index.html").is_file()
    assert sorted(p.name for p in report.glob("rank_*")) == [f"rank_{n}" for n in range(4)]
    # Rank 1 compiled one more frame than the others.
    compile_ids = {
        n: set(json.loads((report / f"rank_{n}" / "compile_directory.json").read_text()))
        for n in range(4)
    }
    assert compile_ids[1] > compile_ids[0] == compile_ids[2] == compile_ids[3]


TWO_SINKS = """\
file_format: "1.0"
logger_provider:
  processors:
    - batch:
        schedule_delay: 200
        exporter:
          otlp_grpc: {endpoint: "${OTEL_EXPORTER_OTLP_ENDPOINT}"}
    - batch:
        schedule_delay: 200
        exporter:
          otlp_file/development: {output_stream: "file://${TORCH_OTEL_OUTPUT}"}
"""


def test_two_ranks_write_their_own_files_and_tlparse_reads_all_ranks(tmp_path: Path) -> None:
    """One profile, two exporters: OTLP through Rotel and a file per rank (``{rank}``)."""
    profile = tmp_path / "two-sinks.yaml"
    profile.write_text(TWO_SINKS)
    job = torchrun_through_rotel(
        tmp_path,
        2,
        "--dedup",
        "--exporter",
        str(profile),
        "--output",
        str(tmp_path / "rank-{rank}.jsonl"),
    )
    # torchrun's own process has no rank: it says so and uses 0.
    assert "has {rank} but this process has no rank" in job.stderr
    per_rank = {n: read_log_records(tmp_path / f"rank-{n}.jsonl") for n in (0, 1)}
    assert {r.resource.get(RANK) for r in per_rank[1]} == {1}
    assert {r.resource.get(RANK) for r in per_rank[0]} <= {0, None}
    assert len(job.records) == len(per_rank[0]) + len(per_rank[1])

    rebuilt = tmp_path / "rebuilt"
    cli("to-tlparse", tmp_path / "rank-0.jsonl", tmp_path / "rank-1.jsonl", "-o", rebuilt)
    files = sorted(rebuilt.glob(f"{TRACE_PREFIX}*.log"))
    assert sorted(map(rank_of, files)) == [0, 1]
    natives = {rank_of(p): p for p in job.native.glob(f"{TRACE_PREFIX}rank_*.log")}
    for path in files:
        assert path.read_bytes() == natives[rank_of(path)].read_bytes()
    tlparse = subprocess.run(
        [str(TLPARSE), str(rebuilt), "--all-ranks-html", "-o", str(tmp_path / "report")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tlparse.returncode == 0, tlparse.stderr
    assert sorted(p.name for p in (tmp_path / "report").glob("rank_*")) == ["rank_0", "rank_1"]
    assert (tmp_path / "report" / "index.html").is_file()


def output_code(name: str) -> str:
    """What ``dedup_store.py`` logs for ``name``."""
    return f"# {name}\n" + "buf0 = empty_strided_cpu((16, 16), (16, 1), torch.float32)\n" * 40


def test_store_server_going_away_mid_run(tmp_path: Path) -> None:
    """No hang, no crash; bodies decided before stay references, new ones go in full,
    counted, and TORCH_OTEL_DEBUG says so once."""
    import torch.distributed as dist

    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, torch.distributed as d\n"
            "s = d.TCPStore('127.0.0.1', 0, is_master=True, wait_for_workers=False)\n"
            "print(s.port, flush=True)\nsys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        another_rank = dist.TCPStore("127.0.0.1", port, is_master=False, wait_for_workers=False)
        claimed = hashlib.sha256(output_code("claimed").encode()).hexdigest()
        assert another_rank.add(f"{KEY_PREFIX}/store-test/{claimed}", 1) == 1
        with OtlpReceiver() as receiver:
            worker = subprocess.Popen(
                [sys.executable, str(STORE_WORKLOAD), "127.0.0.1", str(port)],
                env=clean_env(
                    {
                        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
                        "TORCHELASTIC_RUN_ID": "store-test",
                        "TORCH_OTEL_DEBUG": "1",
                    }
                ),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            first = json.loads(worker.stdout.readline())  # type: ignore[union-attr]
            server.send_signal(signal.SIGKILL)
            server.wait(30)
            out, err = worker.communicate("go\n", timeout=120)  # no hang
            assert worker.returncode == 0, err[-3000:]
            records = receiver.log_records()
    finally:
        server.kill()
        server.wait(30)
    second = json.loads(out)
    assert first["bodies"] == {"published": 1, "referenced": 2}
    assert second == {
        "phase": 2,
        "bodies": {"published": 1, "referenced": 3, "uncoordinated": 2},
        "dropped": {},
    }
    assert err.count("the job's store failed") == 1
    digest = {name: hashlib.sha256(output_code(name).encode()).hexdigest() for name in
              ("mine", "claimed", "after-1", "after-2")}  # fmt: skip
    sent = [(r.body.split("\n")[0], r.attributes.get(REF), r.attributes[SHA]) for r in records]
    assert sent == [
        ("# mine", None, digest["mine"]),
        ("", digest["claimed"], digest["claimed"]),
        ("", digest["mine"], digest["mine"]),
        ("# after-1", None, digest["after-1"]),
        ("# after-2", None, digest["after-2"]),
        ("", digest["mine"], digest["mine"]),
    ]


def test_dedup_without_a_process_group_and_rank_unknown(tmp_path: Path) -> None:
    """A single process with --dedup and {rank}: bodies in full (said once with
    TORCH_OTEL_DEBUG), hashes still attached; the file is rank 0's (said too)."""
    script = tmp_path / "job.py"
    script.write_text(
        "import torch._logging\n"
        "torch._logging.set_logs(output_code=True)\n"
        "log = torch._logging.getArtifactLogger('torch._inductor.graph', 'output_code')\n"
        "for name in ('a', 'b', 'a'):\n"
        "    log.debug('%s', name * 5000)\n"
    )
    run = run_python(
        [*TORCH_OTEL, "run", "--exporter", "file", "--output", str(tmp_path / "out-{rank}.jsonl"),
         "--dedup", "--", sys.executable, str(script)],
        env={"TORCH_OTEL_DEBUG": "1"},
        output=tmp_path / "out-0.jsonl",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("no torch.distributed process group") == 1
    assert run.stderr.count("has {rank} but this process has no rank") == 1
    assert [r.body for r in run.records] == ["a" * 5000, "b" * 5000, "a" * 5000]
    assert [r.attributes[SHA] for r in run.records] == [
        hashlib.sha256(text.encode()).hexdigest() for text in ("a" * 5000, "b" * 5000, "a" * 5000)
    ]
    assert all(REF not in r.attributes for r in run.records)
