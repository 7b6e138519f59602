"""Recompile reasons as metric attribute values: normalised, and bounded in number.

torch records why a frame recompiled as the guard failures of its cached entries;
the first one (``recompile_reason`` in ``CompilationMetrics``) reads, e.g.::

    0/1: tensor 'x' size mismatch at index 0. expected 4, actual 6
    0/0: n == 1     # y = x * n  # train.py:35 in f
    0/2: ___check_type_id(n, 140415030623456), type=<class 'int'>  # y = x * n  # ...

Used as is, every new batch size or object id would be a new time series. So a
reason is normalised (:func:`normalise_recompile_reason`):

1. only its first line (the first failed guard);
2. without the compile id of the failed entry (``0/1: ``) and without torch's
   trailing source comment (``# y = x * n  # train.py:35 in f``, ``(HINT: ...)``);
3. every number becomes ``N`` (sizes, constants, object and type ids, addresses)
   except positions: a number right after ``[`` or ``index `` / ``dim `` stays, so
   ``size()[0]`` and ``size()[1]`` stay apart; a number inside a name (``s77``,
   ``L['layer3']``) stays;
4. whitespace collapsed, at most :data:`MAX_REASON_CHARS` characters.

The first :data:`MAX_DISTINCT_VALUES` distinct values of a process are kept as they
are; any later new value is counted as ``other`` (:class:`BoundedValues`), so one
process exports at most that many reason values whatever its workload does.
"""

from __future__ import annotations

import re
import threading

MAX_DISTINCT_VALUES = 50
"""Distinct recompile reasons (and graph-break types) a process reports before ``other``."""

MAX_REASON_CHARS = 160
OTHER = "other"
UNKNOWN = "unknown"

_COMPILE_ID_PREFIX = re.compile(r"^\s*\[?!?\d+(?:/\d+)+(?:_\d+)?\]?:\s*")
_SOURCE_COMMENT = re.compile(r"\s+#.*$|\s*\(HINT:[^)]*\)\s*$")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")
_KEEP_AFTER = ("[", "index ", "dim ")
_SPACES = re.compile(r"\s+")


def normalise_recompile_reason(raw: str | None) -> str:
    """The grouping form of a recompile reason (see the module docstring)."""
    if not raw:
        return UNKNOWN
    line = next((text for text in str(raw).splitlines() if text.strip()), "")
    line = _COMPILE_ID_PREFIX.sub("", line)
    line = _SOURCE_COMMENT.sub("", line)
    line = _HEX.sub("N", line)

    def number(match: re.Match[str]) -> str:
        before = match.string[: match.start()]
        return match.group(0) if before.endswith(_KEEP_AFTER) else "N"

    line = _NUMBER.sub(number, line)
    line = _SPACES.sub(" ", line).strip()
    if len(line) > MAX_REASON_CHARS:
        line = line[: MAX_REASON_CHARS - 1] + "…"
    return line or UNKNOWN


class BoundedValues:
    """Passes the first ``limit`` distinct values through; later new ones become ``other``."""

    def __init__(self, limit: int = MAX_DISTINCT_VALUES) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.overflowed = 0
        """How many observations were reported as ``other``."""

    def __call__(self, value: str) -> str:
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
            self.overflowed += 1
            return OTHER

    def __len__(self) -> int:
        return len(self._seen)
