"""Cross-rank de-duplication of large bodies: who sends a body (export thread only).

With ``dedup``, every body of at least ``dedup_min_bytes`` is hashed (SHA-256 of
its UTF-8 bytes, whole, in ``body.py``) and :class:`StoreClaims` decides whether
this record sends it:

* **first in the job**: sent in full (``published``);
* **sent before**, by another rank or by this process: sent as a reference, an
  empty body with ``torch.artifact.body_ref`` (``referenced``);
* **the job's store cannot be asked**: sent in full (``uncoordinated``).

Coordination uses the store the job already has: the ``torch.distributed``
default group's store (torchrun's ``TCPStore``). One atomic ``add`` per distinct
body on the key ``torch_otel/dedup/<job>/<sha256>``: whoever gets 1 is first. A
local table remembers every hash already decided, so a body is asked about once
per process. Requests go through a ``TCPStore`` client of our own (never torch's,
whose lock its barriers need) on a helper thread the export thread waits for at
most ``timeout_s``: torch does not time out every store request itself.

Fallback: without a process group a body is sent in full (and the group is looked
for again next time); after a store error or timeout, every body is sent in full
from then on. Both are counted and said once with ``TORCH_OTEL_DEBUG``. The compile
thread never waits on any of this: it only kept a reference to the group's store
when it saw the group (``capture/_torch.py``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from torch_otel import names
from torch_otel.capture import _torch
from torch_otel.stats import BridgeStats

_log = logging.getLogger("torch_otel")

STORE_THREAD_NAME = "torch-otel-store"
KEY_PREFIX = "torch_otel/dedup"
KEYS_PER_WAIT = 64
"""Store requests per wait: ``timeout_s`` bounds the answer to at most this many (so a
big batch over a slow network is not taken for a store that stopped answering)."""

Connect = Callable[[str, int, float], Any]


class StoreCallTimeout(Exception):
    """The store did not answer within the deadline (the request may still be pending)."""


class _StoreThread:
    """Runs store requests on one daemon thread; the caller waits with a deadline.

    A request that never returns leaves this thread blocked for good (it is a
    daemon: it never holds up the process's exit); the caller stops using it.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=STORE_THREAD_NAME, daemon=True)
        self._thread.start()

    def call(self, function: Callable[[], Any], timeout_s: float) -> Any:
        done = threading.Event()
        outcome: list[tuple[bool, Any]] = []
        self._requests.put((function, outcome, done))
        if not done.wait(timeout_s):
            raise StoreCallTimeout(f"no answer from the store within {timeout_s:g} s")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def _run(self) -> None:
        while True:
            function, outcome, done = self._requests.get()
            try:
                outcome.append((True, function()))
            except BaseException as error:  # handed to the waiting caller
                outcome.append((False, error))
            done.set()


class StoreClaims:
    """Decides, per large body, whether this record sends it (see the module docstring).

    Args:
        find_store: the job's store now (the default group's, or the one the
            compile thread saw last), or None without a process group.
        scope: the job's id in the store keys (the elastic run id, else the SLURM
            job id, else ``job``).
        timeout_s: the longest the export thread waits for one store answer
            (connecting included).
        stats: where ``published`` / ``referenced`` / ``uncoordinated`` are counted.
        connect: opens a client of a ``TCPStore`` server (``host, port, timeout``);
            a store that is not a ``TCPStore`` (``HashStore``, ``FileStore``) is
            used as it is.
    """

    def __init__(
        self,
        find_store: Callable[[], Any],
        *,
        scope: str,
        timeout_s: float,
        stats: BridgeStats,
        connect: Connect = _torch.connect_store,
    ) -> None:
        self._find_store = find_store
        self._scope = scope
        self._timeout_s = timeout_s
        self._stats = stats
        self._connect = connect
        self._decided: dict[str, int] = {}
        """sha256 -> token of the record that published it here (0: sent by another)."""
        self._answered: dict[str, bool] = {}
        """sha256 -> whether first in the job, asked ahead (:meth:`prepare`), no record yet."""
        self._client: Any = None
        self._client_of: Any = None
        self._thread: _StoreThread | None = None
        self.failure: str | None = None
        self._said_no_group = False

    def prepare(self, digests: list[str]) -> None:
        """Ask the store about every digest not decided yet, in one wait (a batch's)."""
        unknown = [
            digest
            for digest in dict.fromkeys(digests)
            if digest not in self._decided and digest not in self._answered
        ]
        if unknown and self.failure is None:
            answers = self._ask(unknown)
            if answers is not None:
                self._answered.update(zip(unknown, answers, strict=True))

    def publishes(self, digest: str, owner: int) -> bool:
        """Whether the record ``owner`` (a token unique among live records) sends the body.

        The same record built again (for another kind of exporter) gets the same
        answer; any other record with a body already decided gets a reference.
        """
        decided = self._decided.get(digest)
        if decided is not None:
            if decided == owner:
                self._stats.count_body(names.BODY_PUBLISHED)
                return True
            self._stats.count_body(names.BODY_REFERENCED)
            return False
        first = self._answered.pop(digest, None)
        if first is None and self.failure is None:
            answers = self._ask([digest])
            first = answers[0] if answers is not None else None
        if first is None:
            self._stats.count_body(names.BODY_UNCOORDINATED)
            return True
        self._decided[digest] = owner if first else 0
        self._stats.count_body(names.BODY_PUBLISHED if first else names.BODY_REFERENCED)
        return first

    def ready(self) -> None:
        """Start the helper thread now (at exit, before new threads are refused)."""
        if self._thread is None and self.failure is None:
            self._thread = _StoreThread()

    def reinit_after_fork(self) -> None:
        """A forked child must not share the parent's connection or (dead) thread."""
        self._client = self._client_of = None
        self._thread = None

    # -- the store --------------------------------------------------------------------
    def _ask(self, digests: list[str]) -> list[bool] | None:
        """For each digest, whether first in the job; None if the store cannot be asked."""
        store = self._find_store()
        if store is None:
            if not self._said_no_group:
                self._said_no_group = True
                _log.debug(
                    "torch-otel: dedup: no torch.distributed process group (yet); "
                    "large bodies are sent in full until there is one"
                )
            return None
        keys = [f"{KEY_PREFIX}/{self._scope}/{digest}" for digest in digests]
        counts: list[int] = []
        try:
            for start in range(0, len(keys), KEYS_PER_WAIT):
                group = keys[start : start + KEYS_PER_WAIT]
                counts += self._call(lambda group=group: self._add_all(store, group))
        except Exception as error:
            self.failure = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            _log.debug(
                "torch-otel: dedup: the job's store failed (%s); large bodies are sent in "
                "full from now on",
                self.failure,
            )
            return None
        return [int(count) == 1 for count in counts]

    def _add_all(self, store: Any, keys: list[str]) -> list[int]:
        """On the store thread: connect if needed, then one ``add`` per key."""
        if self._client is None or self._client_of is not store:
            endpoint = _torch.store_endpoint(store)
            if endpoint is None:
                client = store  # in-process or file store: nothing to time out on the wire
            else:
                client = self._connect(endpoint[0], endpoint[1], self._timeout_s)
            self._client, self._client_of = client, store
        return [int(self._client.add(key, 1)) for key in keys]

    def _call(self, function: Callable[[], Any]) -> Any:
        if self._thread is None:
            self._thread = _StoreThread()
        return self._thread.call(function, self._timeout_s)


def job_scope(distributed: dict[str, Any]) -> str:
    """The job's id for store keys: elastic run id, else SLURM job id, else ``job``."""
    for name in (names.TORCH_ELASTIC_RUN_ID, names.SLURM_JOB_ID):
        value = distributed.get(name)
        if value:
            return str(value).replace("/", "_")
    return "job"
