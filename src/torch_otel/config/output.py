"""The ``file`` profile's output path, with ``{rank}`` and ``{pid}`` replaced per process.

The path is ``--output`` / ``output=``, else ``TORCH_OTEL_OUTPUT``, else
``./torch-otel-logs.jsonl``, made absolute. ``{rank}`` becomes the process's rank
as its launcher gives it (``RANK``, else ``SLURM_PROCID``) and ``{pid}`` its pid, so
ranks (and the processes of one rank) sharing a network filesystem never share a
file. A process with no rank uses ``0`` and says so on stderr. ``{{`` and ``}}`` are
literal braces; any other ``{...}`` is an error naming the setting.

``torch-otel run`` checks the placeholders once and hands every child the *template*
(absolute, placeholders kept) in ``TORCH_OTEL_OUTPUT``: each process replaces them
itself, with its own rank and pid, when it loads the profile.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

from torch_otel import environment_variables as env
from torch_otel import names
from torch_otel.config.resource import distributed_environment
from torch_otel.errors import ConfigError

DEFAULT_OUTPUT = "torch-otel-logs.jsonl"
PLACEHOLDERS = ("rank", "pid")

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_log = logging.getLogger("torch_otel")


def check_placeholders(text: str, source: str) -> None:
    """Raise :class:`ConfigError` (naming ``source``) for anything but ``{rank}``/``{pid}``."""
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name not in PLACEHOLDERS:
            shown = token if name is not None else f"a lone {token!r}"
            raise ConfigError(
                source,
                f"unknown placeholder {shown} in {text!r}; use "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                + " (and {{ }} for literal braces)",
            )


def has_placeholders(text: str) -> bool:
    return any(m.group(1) in PLACEHOLDERS for m in _TOKEN.finditer(text))


def output_template(
    output: str | None, environ: Mapping[str, str], *, source: str | None = None
) -> str:
    """The chosen output path, absolute, placeholders checked but not replaced."""
    if output:
        chosen, source = output, source or "output"
    elif environ.get(env.TORCH_OTEL_OUTPUT):
        chosen, source = environ[env.TORCH_OTEL_OUTPUT], env.TORCH_OTEL_OUTPUT
    else:
        chosen, source = DEFAULT_OUTPUT, "output"
    check_placeholders(chosen, source)
    return str(Path(chosen).expanduser().resolve())


def expand_output(
    template: str,
    environ: Mapping[str, str],
    *,
    pid: int | None = None,
    announce: bool = False,
) -> str:
    """``template`` with this process's rank and pid (rank 0 if unknown; ``announce``
    says so on stderr)."""

    values = {"pid": str(os.getpid() if pid is None else pid)}
    if any(match.group(1) == "rank" for match in _TOKEN.finditer(template)):
        rank = distributed_environment(environ).get(names.TORCH_DISTRIBUTED_RANK)
        if rank is None and announce:
            _log.warning(
                "torch-otel: the output path %s has {rank} but this process has no rank "
                "(%s and %s are unset); using 0",
                template,
                env.RANK,
                env.SLURM_PROCID,
            )
        values["rank"] = str(0 if rank is None else rank)

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return values.get(match.group(1) or "", token)

    return _TOKEN.sub(replace, template)
