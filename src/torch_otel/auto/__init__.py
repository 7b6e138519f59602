"""Auto-install: the bridge in programs that do not know about torch-otel (internal).

:mod:`.autoinstall` installs the bridge right after ``import torch``; the
``bootstrap`` directory's ``sitecustomize`` does that in every Python process of
a ``torch-otel run`` job, and :mod:`.instrumentor` does it for
``opentelemetry-instrument``.
"""
