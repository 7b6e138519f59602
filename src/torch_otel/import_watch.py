"""Running code right after a module is imported, without importing it ourselves.

``torch-otel run`` installs the bridge in every Python process right after
``import torch`` (most of a job's processes never import torch and must pay nothing),
and compile health attaches to ``torch._dynamo`` right after ``torch.compile`` imports it
(more than a second, which a process that never compiles must not pay). Both use one
:class:`ImportWatcher`: a duck-typed meta path finder (``importlib.abc`` costs 15 ms to
import at interpreter start) that finds nothing itself, lets the other finders (another
bridge's watcher included) find the module, and wraps its loader.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Callable
from typing import Any


class ImportWatcher:
    """A meta path finder that runs ``then`` right after ``name`` has been imported."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name = name
        self._then = then

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # one shot; also avoids recursion below
        spec = None
        for finder in list(sys.meta_path):  # the others (another bridge's watcher too)
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(fullname, path, target) if find_spec is not None else None
            if spec is not None:
                break
        else:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        original_exec = spec.loader.exec_module
        then = self._then

        def exec_module(module: Any) -> None:
            original_exec(module)
            then()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def run_after_import(name: str, then: Callable[[], None], *, only_one: bool = False) -> bool:
    """Run ``then`` right after ``name`` is imported (now, if it already is).

    ``only_one``: do nothing (and return False) if a watcher for ``name`` is waiting.
    """
    if name in sys.modules:
        then()
        return True
    if only_one and any(isinstance(f, ImportWatcher) and f.name == name for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, ImportWatcher(name, then))
    return True
