"""Installing the bridge in a program that does not know about torch-otel.

``torch-otel run -- python train.py`` puts ``torch_otel/auto/bootstrap`` first on
``PYTHONPATH``; its ``sitecustomize`` calls :func:`install_when_torch_imported`
in every Python process of the job (the script, its ``multiprocessing``
children, inductor's compile workers). Nothing heavy happens at interpreter
start: the bridge is installed right after ``import torch`` completes, so a
child that never imports torch pays only for this small module.
"""

from __future__ import annotations

import os
import sys

from torch_otel.import_watch import run_after_import


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
    run_after_import("torch", lambda: install_from_environment(**options), only_one=True)
