"""A real OpenTelemetry collector for the tests: Rotel (``rotel-agent``), on loopback.

The ``rotel`` Python package (pinned in the ``test`` extra) ships ``rotel-agent``, a
collector written in Rust with OTLP gRPC and HTTP receivers (4 MiB gRPC limit by
default, like the OpenTelemetry Collector) and an OTLP exporter. :class:`Rotel`
starts one on free loopback ports, forwarding everything to a downstream OTLP/gRPC
endpoint (usually an :class:`~infra.otlp_receiver.OtlpReceiver`), and stops it at
the end::

    with OtlpReceiver(grpc_max_receive_bytes=64 << 20) as receiver, Rotel(
        receiver.grpc_endpoint
    ) as rotel:
        ...  # export to rotel.grpc_endpoint or rotel.http_endpoint
        rotel.wait_for(receiver, records=10)

Rotel re-batches by record count (``--batch-max-size``), so what it forwards can
exceed a downstream 4 MiB limit even when every request it received was under it:
give the receiver behind it a larger gRPC limit. Its pid and log files live in a
temporary directory of its own (never the shared ``/tmp/rotel-agent.*`` defaults),
and it runs in the foreground (no ``--daemon``), so stopping is a signal to a child
we own.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

ROTEL_VERSION = "0.0.1a15"


def rotel_binary() -> Path:
    """The ``rotel-agent`` executable inside the installed ``rotel`` package."""
    import rotel

    return Path(rotel.__file__).parent / "rotel-agent"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Rotel:
    """``rotel-agent start`` on loopback, exporting OTLP/gRPC to ``downstream``.

    Args:
        downstream: ``http://127.0.0.1:PORT`` of an OTLP/gRPC receiver.
        batch_timeout_ms: how long Rotel holds records to batch them.
        extra_args: more ``rotel-agent start`` options.
    """

    def __init__(
        self,
        downstream: str,
        *,
        batch_timeout_ms: int = 100,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.downstream = downstream
        self.batch_timeout_ms = batch_timeout_ms
        self.extra_args = extra_args
        self.grpc_port = free_port()
        self.http_port = free_port()
        self._dir: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_text(self) -> str:
        """What Rotel wrote to its log file and stderr so far (for failure messages)."""
        if self._dir is None:
            return ""
        parts = []
        for name in ("rotel.log", "stderr.log"):
            path = Path(self._dir) / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def start(self, timeout_s: float = 20.0) -> Rotel:
        self._dir = tempfile.mkdtemp(prefix="rotel-")
        directory = Path(self._dir)
        args = [
            str(rotel_binary()),
            "start",
            "--pid-file",
            str(directory / "rotel.pid"),
            "--log-file",
            str(directory / "rotel.log"),
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            self.downstream,
            "--batch-timeout",
            f"{self.batch_timeout_ms}ms",
            *self.extra_args,
        ]
        stderr = (directory / "stderr.log").open("wb")
        with stderr:
            self._process = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=stderr, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout_s
        while not (_accepts(self.grpc_port) and _accepts(self.http_port)):
            if self._process.poll() is not None:
                log = self.log_text
                self.stop()
                raise RuntimeError(f"rotel-agent exited at start:\n{log[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"rotel-agent did not listen within {timeout_s:g}s")
            time.sleep(0.05)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (Rotel flushes what it holds), then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_for(self, receiver: Any, *, records: int, timeout_s: float = 30.0) -> list[Any]:
        """Wait until ``receiver`` holds ``records`` log records (Rotel batches and forwards)."""
        try:
            return list(receiver.wait_for_logs(records, timeout=timeout_s))
        except TimeoutError as error:
            raise TimeoutError(f"{error}\nrotel log:\n{self.log_text[-2000:]}") from None

    def __enter__(self) -> Rotel:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False
