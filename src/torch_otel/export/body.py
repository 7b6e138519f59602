"""The one body path: UTF-8 repair and chunking, for every representation.

Both the SDK record path (``mapping.py``) and the OTLP encoder
(``otlp_encoder.py``) take a record's body from :meth:`BodySplitter.split`, so
a body is repaired, chunked and tagged the same way whatever the sink.

* Text that is not valid UTF-8 (lone surrogates) is escaped, and the record says
  so in ``torch_otel.render_error``.
* A body over ``max_body_bytes`` becomes several records, cut between code
  points, that carry ``torch.artifact.chunk.index`` / ``.count`` / ``.group``;
  joining a group's bodies in index order gives the original text byte for byte.
"""

from __future__ import annotations

import os
from typing import Any

from torch_otel import names

INVALID_UTF8 = "body had invalid UTF-8 (escaped)"

BodyPiece = tuple[str, dict[str, Any]]
"""A body (or one chunk of it) and the chunk attributes it carries (empty if whole)."""


def split_utf8(text: str, max_bytes: int) -> list[str]:
    """Split ``text`` into pieces whose UTF-8 encoding is at most ``max_bytes``.

    Cuts only between code points, so ``"".join(pieces) == text`` and every
    piece is valid UTF-8 on its own.
    """
    if max_bytes < 4:
        raise ValueError("max_bytes must be at least 4 (one UTF-8 code point)")
    if len(text) * 4 <= max_bytes:
        return [text]
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return [text]
    pieces: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + max_bytes, len(data))
        # Back off continuation bytes (0b10xxxxxx) so we cut on a boundary.
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        pieces.append(data[start:end].decode("utf-8"))
        start = end
    return pieces


def valid_utf8(text: str) -> tuple[str, bool]:
    """``text`` made encodable (lone surrogates escaped), and whether it had to be."""
    if text.isascii():
        return text, False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8"), True
    return text, False


class BodySplitter:
    """Repairs and chunks bodies; chunk-group ids are unique across processes."""

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self._group_prefix = os.urandom(6).hex()
        self._group_seq = 0

    def split(self, message: str) -> tuple[list[BodyPiece], str | None]:
        """The pieces of ``message`` and, if it had to be repaired, why."""
        body, escaped = valid_utf8(message)
        problem = INVALID_UTF8 if escaped else None
        pieces = split_utf8(body, self.max_body_bytes)
        if len(pieces) == 1:
            return [(body, {})], problem
        group = self.next_group()
        count = len(pieces)
        return [
            (
                piece,
                {
                    names.TORCH_ARTIFACT_CHUNK_INDEX: index,
                    names.TORCH_ARTIFACT_CHUNK_COUNT: count,
                    names.TORCH_ARTIFACT_CHUNK_GROUP: group,
                },
            )
            for index, piece in enumerate(pieces)
        ], problem

    def next_group(self) -> str:
        """A new id shared by the chunks of one record."""
        self._group_seq += 1
        return f"{self._group_prefix}-{os.getpid()}-{self._group_seq}"
