"""Every example in README.md and docs/ runs, in order, one directory per document.

The directory holds the docs' ``train.py`` (a tiny compile with a recompile); a
loopback OTLP receiver stands in for the collector: the examples' collector address
(``http://localhost:4317`` / ``:4318``) is replaced by the receiver's, and
``OTEL_EXPORTER_OTLP_ENDPOINT`` points there for examples that rely on the default.
Each example must exit 0 without a traceback, and what it promises must arrive:
records at the receiver for an OTLP example, lines in each ``--output`` file, tlparse's
report for the tlparse example.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.docs import DOCUMENTS, CodeBlock, code_blocks
from helpers.processes import REPO, clean_env
from infra.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.compile

DOCUMENTS_WITH_EXAMPLES = [doc for doc in DOCUMENTS if any(b.runs for b in code_blocks(doc))]


def localize(code: str, receiver: OtlpReceiver) -> str:
    return code.replace("http://localhost:4317", receiver.grpc_endpoint).replace(
        "http://localhost:4318", receiver.http_endpoint
    )


def run_block(
    block: CodeBlock, workdir: Path, receiver: OtlpReceiver
) -> subprocess.CompletedProcess:
    code = localize(block.code, receiver)
    env = clean_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PWD": str(workdir),
        }
    )
    if block.language == "python":
        script = workdir / f"example_{block.line}.py"
        script.write_text(code)
        command = [sys.executable, str(script)]
    else:
        command = ["bash", "-euo", "pipefail", "-c", code]
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600
    )


def expect_promises(block: CodeBlock, workdir: Path, receiver: OtlpReceiver, before: int) -> None:
    code = block.code
    if re.search(r"otlp-grpc|otlp-http|install\(exporter=\"otlp|opentelemetry-instrument", code):
        assert len(receiver.log_records()) > before, f"{block.name}: nothing reached the receiver"
    for output in re.findall(r"--output (\S+)", code):
        lines = (workdir / output).read_text().splitlines()
        assert lines and all(line.startswith("{") for line in lines), block.name
    for report in re.findall(r"(?m)^tlparse .* -o (\S+)", code):
        assert (workdir / report / "index.html").exists(), block.name


@pytest.mark.parametrize("document", DOCUMENTS_WITH_EXAMPLES, ids=lambda doc: doc.name)
def test_examples_run(document: Path, tmp_path: Path) -> None:
    shutil.copy(REPO / "tests" / "workloads" / "train.py", tmp_path / "train.py")
    with OtlpReceiver() as receiver:
        for block in (b for b in code_blocks(document) if b.runs):
            before = len(receiver.log_records())
            result = run_block(block, tmp_path, receiver)
            assert result.returncode == 0, (
                f"{block.name} failed ({result.returncode}):\n{result.stderr[-3000:]}"
            )
            assert "Traceback" not in result.stderr, f"{block.name}:\n{result.stderr[-3000:]}"
            expect_promises(block, tmp_path, receiver, before)
