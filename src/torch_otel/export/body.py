"""The one body path: UTF-8 repair, de-duplication and chunking, for every representation.

Both the SDK record path (``mapping.py``) and the OTLP encoder
(``otlp_encoder.py``) take a record's body from :meth:`BodySplitter.split`, so
a body is repaired, de-duplicated, chunked and tagged the same way whatever the sink.

* Text that is not valid UTF-8 (lone surrogates) is escaped, and the record says
  so in ``torch_otel.render_error``.
* With ``dedup``, a body of at least ``dedup_min_bytes`` (UTF-8) is hashed once,
  whole, before chunking: every piece carries ``torch.artifact.sha256``. When
  another record of the job already sent that body (``dedup.py`` decides), the
  record is sent once, with an empty body, ``torch.artifact.sha256`` and
  ``torch.artifact.body_ref`` (the same hash) and no chunk attributes, however
  large the body: a reader joins the published chunks by that hash.
* A body over ``max_body_bytes`` becomes several records, cut between code
  points, that carry ``torch.artifact.chunk.index`` / ``.count`` / ``.group``;
  joining a group's bodies in index order gives the original text byte for byte.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any, Protocol

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


class Claims(Protocol):
    """Who sends a body (``dedup.StoreClaims``): True for the record that must."""

    def prepare(self, digests: list[str]) -> None: ...

    def publishes(self, digest: str, owner: int) -> bool: ...


class BodySplitter:
    """Repairs, de-duplicates and chunks bodies; chunk-group ids are unique across processes.

    ``claims`` (with ``dedup_min_bytes``) turns de-duplication on.
    """

    def __init__(
        self, max_body_bytes: int, *, claims: Claims | None = None, dedup_min_bytes: int = 0
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.claims = claims
        self.dedup_min_bytes = dedup_min_bytes
        self._group_prefix = os.urandom(6).hex()
        self._group_seq = 0
        self._prepared: dict[int, tuple[str, str]] = {}

    def prepare(self, messages: Iterable[str]) -> None:
        """Hash a batch's large bodies up front and let ``claims`` ask about them all at
        once (one wait for the store per batch, not one per body). Until :meth:`forget`,
        :meth:`split` takes these hashes instead of computing them again."""
        if self.claims is None:
            return
        smallest = self.dedup_min_bytes
        for message in messages:
            if len(message) * 4 < smallest:  # at most 4 UTF-8 bytes per character
                continue
            digest = self._digest(valid_utf8(message)[0])
            if digest is not None:
                self._prepared[id(message)] = (message, digest)
        self.claims.prepare([digest for _, digest in self._prepared.values()])

    def forget(self) -> None:
        """Drop what :meth:`prepare` kept (the batch's bodies are no longer needed)."""
        self._prepared.clear()

    def _digest(self, body: str) -> str | None:
        if len(body) * 4 < self.dedup_min_bytes:
            return None
        data = body.encode("utf-8")
        if len(data) < self.dedup_min_bytes:
            return None
        return hashlib.sha256(data).hexdigest()

    def split(self, message: str, owner: int = 0) -> tuple[list[BodyPiece], str | None]:
        """The pieces of ``message`` and, if it had to be repaired, why.

        ``owner`` identifies the record among live ones (its ``id``), so that a
        record built twice (for two kinds of exporter) is either sent or referenced
        both times.
        """
        body, escaped = valid_utf8(message)
        problem = INVALID_UTF8 if escaped else None
        tags: dict[str, Any] = {}
        if self.claims is not None and len(body) * 4 >= self.dedup_min_bytes:
            prepared = self._prepared.get(id(message))
            digest = prepared[1] if prepared and prepared[0] is message else self._digest(body)
            if digest is not None:
                tags[names.TORCH_ARTIFACT_SHA256] = digest
                if not self.claims.publishes(digest, owner):
                    return [("", {**tags, names.TORCH_ARTIFACT_BODY_REF: digest})], problem
        pieces = split_utf8(body, self.max_body_bytes)
        if len(pieces) == 1:
            return [(body, tags)], problem
        group = self.next_group()
        count = len(pieces)
        return [
            (
                piece,
                {
                    **tags,
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
