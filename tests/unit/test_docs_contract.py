"""The documentation states the contract the code defines: every name and variable listed,
every example either run by ``tests/e2e/test_docs_examples.py`` or knowingly not."""

from __future__ import annotations

import re

import pytest

from helpers.docs import DOCUMENTS, all_code_blocks
from helpers.processes import REPO
from torch_otel import environment_variables, names

REFERENCE = (REPO / "docs" / "reference.md").read_text()


def listed_in_reference(name: str) -> bool:
    return f"`{name}`" in REFERENCE or re.search(rf"`[^`]*\b{re.escape(name)}\b[^`]*`", REFERENCE)


@pytest.mark.parametrize(
    "name",
    [
        *names.record_attribute_names(),
        *names.resource_attribute_names(),
        *names.metric_names(),
        *names.drop_reasons(),
        *names.metric_attribute_names(),
        *names.event_names(),
        *names.body_outcomes(),
    ],
)
def test_every_emitted_name_is_in_the_reference(name: str) -> None:
    assert listed_in_reference(name), f"{name} is not listed in docs/reference.md"


@pytest.mark.parametrize("variable", environment_variables.all_variables())
def test_every_environment_variable_is_in_the_reference(variable: str) -> None:
    assert listed_in_reference(variable), f"{variable} is not listed in docs/reference.md"


def test_every_example_runs_unless_it_installs_packages() -> None:
    blocks = all_code_blocks()
    skipped = [block for block in blocks if block.language in ("python", "bash") and not block.runs]
    assert [block.name for block in skipped] == ["README.md:8"]
    assert all(block.language in ("python", "bash", "text") for block in blocks), [
        (block.name, block.language) for block in blocks
    ]
    assert sum(block.runs for block in blocks) >= 8


def test_readme_test_command_is_what_ci_runs() -> None:
    (install,) = [b for b in all_code_blocks() if b.name == "README.md:8"]
    test_line = next(line for line in install.code.splitlines() if "pytest" in line)
    ci = (REPO / ".ci" / "run").read_text()
    for command in ("ruff check src tests benchmarks", "python -m pytest", "torch==2.13.0"):
        assert command in test_line and command in ci


def test_docs_link_to_existing_files() -> None:
    for document in DOCUMENTS:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", document.read_text()):
            assert (document.parent / target).exists(), f"{document.name} links to {target}"
