"""``debug=True`` / ``TORCH_OTEL_DEBUG=1``: torch-otel's own decisions on stderr.

The ``torch_otel`` logger says which profile was chosen, whether the
application's provider is reused, why a rank does not export. Its handler
writes to whatever ``sys.stderr`` is at the time (test runners and notebooks
swap it), one message per line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

LOGGER_NAME = "torch_otel"


class CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _handler(logger: logging.Logger) -> CurrentStderrHandler | None:
    for handler in logger.handlers:
        if isinstance(handler, CurrentStderrHandler):
            return handler
    return None


def enable() -> None:
    """Print torch-otel's debug messages on stderr (idempotent)."""
    logger = logging.getLogger(LOGGER_NAME)
    if _handler(logger) is None:
        logger.addHandler(CurrentStderrHandler())
    logger.setLevel(logging.DEBUG)


def disable() -> None:
    logger = logging.getLogger(LOGGER_NAME)
    handler = _handler(logger)
    if handler is not None:
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
