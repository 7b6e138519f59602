"""Trace: torch's structured trace and compile telemetry (internal).

:mod:`.handler` captures ``torch.__trace`` records (``--trace``), :mod:`.events`
maps them to OTel events (lossless metadata, tlparse-ready), :mod:`.telemetry`
turns them into compile spans and metrics.
"""
