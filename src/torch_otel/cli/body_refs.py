"""Reading de-duplicated data back: bodies by SHA-256, so references resolve.

With ``dedup``, a record whose body another record of the job sent arrives with an
empty body and ``torch.artifact.body_ref`` (the SHA-256 of the body). Bodies are
content-addressed, so any record carrying that ``torch.artifact.sha256`` without a
reference is a source, whichever rank, process, file or line it came from: a whole
body as it is, a chunked one joined by chunk index once all its chunks are there
(chunks are only combined with chunks of the same count, i.e. the same cut).
``summary`` keeps lengths only; ``to-tlparse`` keeps the text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from torch_otel import names

T = TypeVar("T")


def body_ref(attributes: Mapping[str, Any]) -> str | None:
    """The SHA-256 a record refers to instead of carrying its body, if it does."""
    ref = attributes.get(names.TORCH_ARTIFACT_BODY_REF)
    return ref if isinstance(ref, str) and ref else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class BodyIndex(Generic[T]):
    """Published bodies (or what a reader keeps of them) by SHA-256.

    ``combine`` turns the values of a chunked body's pieces, in index order, into
    the value of the whole (``"".join`` for text, ``sum`` for lengths).
    """

    def __init__(self, combine: Callable[[list[T]], T]) -> None:
        self._combine = combine
        self._whole: dict[str, T] = {}
        self._chunks: dict[str, dict[int, dict[int, T]]] = {}

    def add(self, attributes: Mapping[str, Any], value: T) -> None:
        """Keep ``value`` if this record publishes a body (has a hash, is no reference)."""
        digest = attributes.get(names.TORCH_ARTIFACT_SHA256)
        if not isinstance(digest, str) or body_ref(attributes) is not None:
            return
        index = attributes.get(names.TORCH_ARTIFACT_CHUNK_INDEX)
        count = attributes.get(names.TORCH_ARTIFACT_CHUNK_COUNT)
        if _is_int(index) and _is_int(count):
            self._chunks.setdefault(digest, {}).setdefault(count, {}).setdefault(index, value)
        else:
            self._whole.setdefault(digest, value)

    def resolve(self, digest: str) -> T | None:
        """The body (or its value) for ``digest``; None if no complete copy was read."""
        if digest in self._whole:
            return self._whole[digest]
        for count, pieces in self._chunks.get(digest, {}).items():
            if all(index in pieces for index in range(count)):
                return self._combine([pieces[index] for index in range(count)])
        return None


def text_index() -> BodyIndex[str]:
    return BodyIndex("".join)


def length_index() -> BodyIndex[int]:
    return BodyIndex(sum)
