"""Loaded at start-up by every Python process of a ``torch-otel run`` job.

Arms the bridge (installed once ``torch`` is imported), then runs any other
``sitecustomize`` the environment had, so ours does not hide it.
"""

import os
import sys


def _torch_otel_bootstrap() -> None:
    try:
        from torch_otel import environment_variables as env

        if os.environ.get(env.TORCH_OTEL_BOOTSTRAP) != "1":
            return
        from torch_otel.auto.autoinstall import install_when_torch_imported

        install_when_torch_imported()
    except Exception as error:  # never break the user's interpreter
        print(f"torch-otel: bootstrap failed: {error}", file=sys.stderr)


def _chain_other_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    import importlib.util

    for entry in sys.path:
        if not entry or os.path.abspath(entry) == here:
            continue
        candidate = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location(
                "_torch_otel_chained_sitecustomize", candidate
            )
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            return


_torch_otel_bootstrap()
_chain_other_sitecustomize()
