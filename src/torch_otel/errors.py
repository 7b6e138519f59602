"""The one exception type torch-otel raises for user mistakes."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting or value given to torch-otel is wrong.

    Raised where the user made the mistake (``install()``, the CLI), never from
    a background thread. ``setting`` names what was wrong (an argument, an
    environment variable, a file) so the message can point at it; the CLI maps
    this exception to exit code 2.
    """

    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        # One line, always: messages from YAML or torch parsers span several.
        super().__init__(f"{setting}: {' '.join(message.split())}")
