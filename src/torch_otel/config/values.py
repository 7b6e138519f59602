"""Parsing one setting's value: booleans, bounded numbers, rank lists.

Every number torch-otel accepts is finite and within a documented range
(``docs/reference.md``): ``nan`` as a flush deadline would never end, an hour-long
schedule delay overflows a timer, and a zero-byte queue drops everything. Each
parser names the setting (argument or variable) its value came from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch_otel.errors import ConfigError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class Bounds:
    """The accepted range of one number setting (inclusive)."""

    minimum: float
    maximum: float
    integer: bool = True
    unit: str = ""

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{_number_text(self.minimum)}..{_number_text(self.maximum)}{unit}"


def bounded_number(value: Any, source: str, bounds: Bounds) -> Any:
    """``value`` as an int (or float) within ``bounds``; ``None`` stays ``None``."""
    if value is None:
        return None
    kind = "an integer" if bounds.integer else "a number"
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value) if bounds.integer else float(value)
        if bounds.integer and isinstance(value, float) and not value.is_integer():
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(
            source, f"expected {kind} in {bounds.describe()}, got {value!r}"
        ) from None
    if not math.isfinite(number) or not bounds.minimum <= number <= bounds.maximum:
        raise ConfigError(source, f"expected {kind} in {bounds.describe()}, got {value!r}")
    return number


def boolean(value: Any, source: str, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(source, f"expected 0/1 or true/false, got {value!r}")


def rank_set(value: Any, source: str) -> frozenset[int] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    ranks = set()
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if not text.isdigit():
            raise ConfigError(source, f"expected comma-separated ranks like 0,1, got {value!r}")
        ranks.add(int(text))
    return frozenset(ranks)


def artifact_ranks(value: Any, source: str) -> dict[str, frozenset[int]] | None:
    """``output_code=0,graph_code=0;1`` or ``{"output_code": [0]}``."""
    if value is None:
        return None
    result: dict[str, frozenset[int]] = {}
    if isinstance(value, Mapping):
        for name, ranks in value.items():
            listed = ranks if not isinstance(ranks, int) else [ranks]
            result[str(name)] = rank_set(listed, source) or frozenset()
        return result
    for item in str(value).split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ConfigError(
                source, f"expected artifact=rank[;rank...] pairs like output_code=0, got {item!r}"
            )
        name, ranks = item.split("=", 1)
        result[name.strip()] = rank_set(ranks.replace(";", ","), source) or frozenset()
    return result


def _number_text(value: float) -> str:
    for size, suffix in ((GiB, " GiB"), (MiB, " MiB"), (KiB, " KiB")):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{suffix}"
    return f"{value:g}"
