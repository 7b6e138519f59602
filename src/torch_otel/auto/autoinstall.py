"""Installing the bridge in a program that does not know about torch-otel.

``torch-otel run -- python train.py`` puts ``torch_otel/auto/bootstrap`` first on
``PYTHONPATH``; its ``sitecustomize`` calls :func:`install_when_torch_imported`
in every Python process of the job (the script, its ``multiprocessing``
children, inductor's compile workers). Nothing heavy happens at interpreter
start: the bridge is installed right after ``import torch`` completes, so a
child that never imports torch pays only for this small module.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys


def install_from_environment(**options: object) -> None:
    """Install with settings from ``TORCH_OTEL_*``; report problems on one line, never crash."""
    try:
        import torch_otel

        torch_otel.install(**options)
    except Exception as error:  # the job must run even if the bridge cannot
        print(f"torch-otel: not installed in pid {os.getpid()}: {error}", file=sys.stderr)


def install_when_torch_imported(**options: object) -> None:
    """Install now if torch is imported, else right after ``import torch`` completes."""
    if "torch" in sys.modules and hasattr(sys.modules["torch"], "_logging"):
        install_from_environment(**options)
        return
    if not any(isinstance(finder, _TorchImportWatcher) for finder in sys.meta_path):
        sys.meta_path.insert(0, _TorchImportWatcher(options))


class _TorchImportWatcher:
    """Finds nothing itself; wraps the real loader of ``torch`` to run code after it.

    A duck-typed meta path finder (``importlib.abc`` costs 15 ms to import, more
    than everything else this module does at interpreter start).
    """

    def __init__(self, options: dict[str, object]) -> None:
        self._options = options

    def find_spec(self, fullname: str, path: object, target: object = None) -> object:
        if fullname != "torch":
            return None
        sys.meta_path.remove(self)  # one shot; also avoids recursion below
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        original_exec = spec.loader.exec_module

        options = self._options

        def exec_module(module: object) -> None:
            original_exec(module)
            install_from_environment(**options)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
