"""Fixtures shared by every layer. Helpers live in ``tests/helpers`` (imported, not fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.processes import REPO


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
