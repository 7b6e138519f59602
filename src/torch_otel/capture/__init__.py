"""Capture: the compile-thread side (internal).

What runs when torch logs: :mod:`.handler` renders the record and copies plain
fields (:mod:`.records`) into the bounded :mod:`.buffer`; :mod:`.sync` keeps the
handler on exactly the loggers torch prints through; :mod:`.components` names
each logger's component and artifact; :mod:`._torch` is the only module that
touches torch internals. Nothing here exports, encodes or imports OpenTelemetry.
"""
