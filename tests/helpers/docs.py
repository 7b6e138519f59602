"""The code blocks of README.md and docs/*.md, as the documentation tests see them.

A fenced block tagged ``python`` or ``bash`` is an example and is executed; ``text``
blocks are synopses. A block right after an HTML comment saying
``not run by the docs test`` is not executed (the README's install commands, which
``.ci/run`` runs itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from helpers.processes import REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
NOT_RUN = "not run by the docs test"
RUNNABLE = ("python", "bash")

_BLOCK = re.compile(
    r"(?:<!--(?P<note>[^>]*)-->\n)?^```(?P<lang>[a-z]*)\n(?P<code>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)


@dataclass(frozen=True)
class CodeBlock:
    document: Path
    line: int
    language: str
    code: str
    runs: bool

    @property
    def name(self) -> str:
        return f"{self.document.name}:{self.line}"


def code_blocks(document: Path) -> list[CodeBlock]:
    text = document.read_text()
    blocks = []
    for match in _BLOCK.finditer(text):
        language = match["lang"]
        note = match["note"] or ""
        blocks.append(
            CodeBlock(
                document=document,
                line=text.count("\n", 0, match.start("code")),
                language=language,
                code=match["code"],
                runs=language in RUNNABLE and NOT_RUN not in note,
            )
        )
    return blocks


def all_code_blocks() -> list[CodeBlock]:
    return [block for document in DOCUMENTS for block in code_blocks(document)]
