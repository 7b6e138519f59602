"""Configuration: settings, profiles, exporter specs, resource (internal).

Everything here runs on the caller's thread (``install()``, the CLI) and raises
:class:`~torch_otel.errors.ConfigError` naming the setting at fault. Profiles
resolve against an ``environ`` mapping passed in; nothing here writes to the
process environment.
"""
