"""Cross-rank de-duplication of large bodies: the body path and the store claims.

Claims of two "ranks" share one real store as the ranks of a job share torchrun's:
torch's in-process ``HashStore``, and a real ``TCPStore`` server on loopback reached
through a client of our own. A store that fails, or never answers, shows the
fallback. No process group is needed here: the claims are handed the store (the
bridge finds it through ``capture/_torch.py``; the end-to-end tests cover that).
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import pytest
import torch.distributed as dist

from torch_otel import debug_output, names
from torch_otel.capture.components import ComponentResolver
from torch_otel.capture.records import CapturedRecord
from torch_otel.config.resource import build_resource
from torch_otel.export.body import BodySplitter
from torch_otel.export.dedup import KEY_PREFIX, StoreClaims, job_scope
from torch_otel.export.mapping import RecordMapper
from torch_otel.export.otlp_encoder import OtlpLogEncoder
from torch_otel.stats import BridgeStats

SHA = names.TORCH_ARTIFACT_SHA256
REF = names.TORCH_ARTIFACT_BODY_REF
INDEX = names.TORCH_ARTIFACT_CHUNK_INDEX


class Always:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def prepare(self, digests: list[str]) -> None:
        pass

    def publishes(self, digest: str, owner: int) -> bool:
        self.asked.append(digest)
        return self.answer


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def claims_on(store: Any, stats: BridgeStats | None = None, **kwargs: Any) -> StoreClaims:
    return StoreClaims(
        lambda: store, scope="job-1", timeout_s=2.0, stats=stats or BridgeStats(), **kwargs
    )


# --- the body path ------------------------------------------------------------------------
def test_only_bodies_of_at_least_the_minimum_are_hashed() -> None:
    claims = Always(True)
    splitter = BodySplitter(1 << 20, claims=claims, dedup_min_bytes=100)
    assert splitter.split("x" * 99) == ([("x" * 99, {})], None)
    # 40 characters, 120 UTF-8 bytes: the minimum is in bytes.
    text = "漢" * 40
    assert splitter.split(text) == ([(text, {SHA: sha256(text)})], None)
    assert claims.asked == [sha256(text)]


def test_a_published_chunked_body_carries_the_hash_of_the_whole_on_every_chunk() -> None:
    splitter = BodySplitter(1024, claims=Always(True), dedup_min_bytes=100)
    text = "é output code\n" * 400
    pieces, _ = splitter.split(text)
    assert len(pieces) > 3
    assert {attributes[SHA] for _, attributes in pieces} == {sha256(text)}
    assert [attributes[INDEX] for _, attributes in pieces] == list(range(len(pieces)))
    assert "".join(body for body, _ in pieces) == text
    assert all(REF not in attributes for _, attributes in pieces)


def test_a_referenced_body_is_one_empty_record_without_chunk_attributes() -> None:
    splitter = BodySplitter(1024, claims=Always(False), dedup_min_bytes=100)
    text = "output code\n" * 400
    pieces, _ = splitter.split(text)
    assert pieces == [("", {SHA: sha256(text), REF: sha256(text)})]


def test_the_hash_is_of_the_body_as_sent_after_utf8_repair() -> None:
    splitter = BodySplitter(1 << 20, claims=Always(True), dedup_min_bytes=64)
    pieces, problem = splitter.split("bad \udcff surrogate " * 10)
    ((body, attributes),) = pieces
    assert problem is not None
    assert attributes[SHA] == sha256(body)


def captured(message: str) -> CapturedRecord:
    return CapturedRecord(
        "torch._inductor.graph.__output_code", 10, time.time(), message, "graph.py", 1, "f",
        1, "MainThread",
    )  # fmt: skip


def test_both_representations_send_the_same_body_once() -> None:
    """A batch built for the OTLP exporters and for SDK exporters: in each, the first
    record with a body sends it and the second refers to it."""
    store = dist.HashStore()
    mapper = RecordMapper(
        ComponentResolver(),
        build_resource(),
        max_body_bytes=1 << 20,
        claims=claims_on(store),
        dedup_min_bytes=64,
    )
    code = "buf0 = empty_strided_cpu((16, 16), (16, 1), torch.float32)\n" * 20
    batch = [captured(code), captured("small"), captured(code)]
    sdk = mapper.map_batch(batch)
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from torch_otel.cli.otlp_json import flatten_logs

    (request,) = OtlpLogEncoder(mapper, max_request_bytes=1 << 22).encode(batch, time.time_ns())
    otlp = flatten_logs(ExportLogsServiceRequest.FromString(request.payload))
    for bodies, attributes in (
        ([r.log_record.body for r in sdk], [dict(r.log_record.attributes) for r in sdk]),
        ([r.body for r in otlp], [r.attributes for r in otlp]),
    ):
        assert bodies == [code, "small", ""]
        assert [a.get(REF) for a in attributes] == [None, None, sha256(code)]
        assert [a.get(SHA) for a in attributes] == [sha256(code), None, sha256(code)]
    assert store.add(f"{KEY_PREFIX}/job-1/{sha256(code)}", 0) == 1  # asked once


# --- the claims -----------------------------------------------------------------------------
def test_two_ranks_on_one_store_the_first_publishes_the_others_refer() -> None:
    store = dist.HashStore()
    stats_a, stats_b = BridgeStats(), BridgeStats()
    rank_a, rank_b = claims_on(store, stats_a), claims_on(store, stats_b)
    digest = sha256("graph")
    assert rank_a.publishes(digest, owner=1) is True
    assert rank_b.publishes(digest, owner=2) is False
    assert rank_a.publishes(digest, owner=1) is True  # the same record, built again
    assert rank_a.publishes(digest, owner=3) is False  # this rank's own earlier body
    assert rank_b.publishes(digest, owner=4) is False
    # One store request per process and distinct body; the rest is the local table.
    assert store.add(f"{KEY_PREFIX}/job-1/{digest}", 0) == 2
    assert stats_a.snapshot().bodies == {"published": 2, "referenced": 1}
    assert stats_b.snapshot().bodies == {"referenced": 2}


class CountingStore:
    """A real HashStore that counts the requests made to it and from which threads."""

    def __init__(self) -> None:
        self.inner = dist.HashStore()
        self.threads: list[str] = []

    def add(self, key: str, value: int) -> int:
        self.threads.append(threading.current_thread().name)
        return int(self.inner.add(key, value))


def test_a_batch_is_asked_about_in_one_wait_off_the_calling_thread() -> None:
    from torch_otel.export.requests import RequestBuilder

    store = CountingStore()
    stats = BridgeStats()
    mapper = RecordMapper(
        ComponentResolver(),
        build_resource(),
        max_body_bytes=1 << 20,
        claims=claims_on(store, stats),
        dedup_min_bytes=64,
    )
    builder = RequestBuilder(lambda: mapper, max_batch_records=100, max_batch_bytes=1 << 22)
    waits: list[int] = []
    real_call = StoreClaims._call

    def counted(self: StoreClaims, function: Any) -> Any:
        waits.append(1)
        return real_call(self, function)

    bodies = [f"body {i}\n" + "x" * 100 for i in range(5)]
    batch = [captured(text) for text in [*bodies, bodies[0], "small"]]
    StoreClaims._call = counted  # type: ignore[method-assign]
    try:
        (request,) = builder.build("sdk", batch)
    finally:
        StoreClaims._call = real_call  # type: ignore[method-assign]
    assert len(waits) == 1 and len(store.threads) == 5
    assert set(store.threads) == {"torch-otel-store"}
    assert [r.log_record.body for r in request] == [*bodies, "", "small"]
    assert stats.snapshot().bodies == {"published": 5, "referenced": 1}
    assert mapper.bodies._prepared == {}  # nothing of the batch is kept


def test_keys_are_scoped_by_job() -> None:
    store = dist.HashStore()
    digest = sha256("graph")
    first = StoreClaims(lambda: store, scope="run-a", timeout_s=2, stats=BridgeStats())
    other_job = StoreClaims(lambda: store, scope="run-b", timeout_s=2, stats=BridgeStats())
    assert first.publishes(digest, 1) and other_job.publishes(digest, 2)
    assert job_scope({names.TORCH_ELASTIC_RUN_ID: "a/b"}) == "a_b"
    assert job_scope({names.SLURM_JOB_ID: "77"}) == "77"
    assert job_scope({}) == "job"


@pytest.fixture
def debug_on() -> Any:
    debug_output.enable()
    yield
    debug_output.disable()


def test_without_a_process_group_bodies_go_in_full_and_it_is_said_once(
    debug_on: None, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = BridgeStats()
    group_store: list[Any] = []
    claims = StoreClaims(
        lambda: group_store[0] if group_store else None, scope="j", timeout_s=2, stats=stats
    )
    assert claims.publishes(sha256("a"), 1) and claims.publishes(sha256("b"), 2)
    assert stats.snapshot().bodies == {"uncoordinated": 2}
    assert capsys.readouterr().err.count("no torch.distributed process group") == 1
    group_store.append(dist.HashStore())  # the job creates its group later: coordinated
    assert claims.publishes(sha256("c"), 3)
    assert not StoreClaims(lambda: group_store[0], scope="j", timeout_s=2, stats=stats).publishes(
        sha256("c"), 4
    )


class BrokenStore:
    def __init__(self, fail_after: int) -> None:
        self.calls = 0
        self.inner = dist.HashStore()
        self.fail_after = fail_after

    def add(self, key: str, value: int) -> int:
        self.calls += 1
        if self.calls > self.fail_after:
            raise RuntimeError("Connection reset by peer\nException raised from recvBytes ...")
        return int(self.inner.add(key, value))


def test_a_store_error_sends_bodies_in_full_from_then_on(
    debug_on: None, capsys: pytest.CaptureFixture[str]
) -> None:
    store, stats = BrokenStore(fail_after=1), BridgeStats()
    claims = claims_on(store, stats)
    assert claims.publishes(sha256("before"), 1)
    for index in range(3):
        assert claims.publishes(sha256(f"after {index}"), 10 + index)
    assert store.calls == 2  # asked once more, then never again
    assert claims.failure == "RuntimeError: Connection reset by peer"
    # A body decided before the failure is still referred to (it was sent).
    assert claims.publishes(sha256("before"), 99) is False
    assert stats.snapshot().bodies == {"published": 1, "uncoordinated": 3, "referenced": 1}
    assert capsys.readouterr().err.count("the job's store failed") == 1


class SilentStore:
    """Accepts requests and never answers (a server that stopped, not one that went away)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def add(self, key: str, value: int) -> int:
        self.release.wait()
        raise RuntimeError("released")


def test_a_store_that_never_answers_costs_one_timeout_once() -> None:
    store, stats = SilentStore(), BridgeStats()
    claims = StoreClaims(lambda: store, scope="j", timeout_s=0.2, stats=stats)
    try:
        assert claims.publishes(sha256("x"), 1) is True
        assert claims.failure is not None and "no answer" in claims.failure
        assert claims.publishes(sha256("y"), 2) is True  # not asked again: no second wait
        assert stats.snapshot().bodies == {"uncoordinated": 2}
    finally:
        store.release.set()


def test_a_tcp_store_is_asked_through_a_client_of_our_own() -> None:
    """torchrun's store is a TCPStore behind torch's prefix; our requests go over a new
    connection to the same server, with keys at the server's top level."""
    server = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    group_store = dist.PrefixStore("default_pg", server)
    connected: list[tuple[str, int]] = []

    def connect(host: str, port: int, timeout_s: float) -> Any:
        connected.append((host, port))
        from torch_otel.capture._torch import connect_store

        return connect_store(host, port, timeout_s)

    digest = sha256("output code")
    rank_0 = claims_on(group_store, connect=connect)
    rank_1 = claims_on(group_store, connect=connect)
    assert rank_0.publishes(digest, 1) is True
    assert rank_1.publishes(digest, 2) is False
    assert connected == [("127.0.0.1", server.port)] * 2
    assert server.add(f"{KEY_PREFIX}/job-1/{digest}", 0) == 2
