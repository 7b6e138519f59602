"""What torch's compile hooks hand to compile health: plain data, copied on the compile thread.

The hooks in :mod:`._torch_compile` run inside torch's compile (start/end callbacks,
the ``CompilationMetrics`` record, a logged graph break). Each builds one of these
tuples from plain values (strings, numbers) and appends it to a queue; everything
else (attributes, normalisation, metrics, slow-compile events) happens on the
compile-health thread (``trace/health.py``). Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class CodeLocation(NamedTuple):
    """A function's name, file and line (``code.function.name``, ``code.file.path``, ...)."""

    function: str
    file: str
    line: int


class CompileStarted(NamedTuple):
    """torch's compile start callback fired (the outermost compile on this process)."""

    compile_id: str  # what torch prints in brackets: "0/1"
    trigger: str  # "dynamo", "lazy_backward", ...
    monotonic: float
    thread_id: int
    code: CodeLocation | None  # the frame being compiled, when known
    rank: int | None
    phases: Any = None
    """torch's live phase stack of the compile thread (a list torch appends to and pops
    from as phases begin and end), read, never written, by the slow-compile check."""


class CompileEnded(NamedTuple):
    """torch's compile end callback fired (normally, or because the compile raised)."""

    compile_id: str
    trigger: str
    monotonic: float


class CompileFinished(NamedTuple):
    """The ``CompilationMetrics`` torch recorded for one compile (fields as torch names them)."""

    compile_id: str | None
    code: CodeLocation | None  # None for a backward compile (torch leaves co_name unset)
    fail_type: str | None
    recompile_reason: str | None
    is_forward: bool
    is_runtime: bool
    restart_reasons: tuple[str, ...]
    phase_seconds: tuple[tuple[str, float], ...]  # ("total", 1.2), ("dynamo", 1.1), ...
    rank: int | None


class GraphBreak(NamedTuple):
    """A graph break torch logged (once per break, whether or not ``graph_breaks`` is on)."""

    compile_id: str | None
    break_type: str  # torch's gb_type, e.g. "Data-dependent branching"
    location: CodeLocation | None  # where in the user's code the graph broke
    rank: int | None


CompileEvent = CompileStarted | CompileEnded | CompileFinished | GraphBreak


class CompileIdText(NamedTuple):
    """A compile id from its printed form (``0/1``, ``!2/0/1``), shaped like torch's
    ``CompileId`` for the attribute mapping (``frame_id``, ``frame_compile_id``...)."""

    text: str
    frame_id: int | None
    frame_compile_id: int | None
    compiled_autograd_id: int | None

    def __str__(self) -> str:
        return self.text


def parse_compile_id(text: str) -> CompileIdText:
    """``"0/1"`` -> frame 0, compile 1; ``"!2/0/1"`` -> compiled autograd 2 too."""
    autograd_id: int | None = None
    rest = text
    if rest.startswith("!"):
        head, _, rest = rest[1:].partition("/")
        autograd_id = _int_or_none(head)
    frame, _, compile_ = rest.partition("/")
    return CompileIdText(text, _int_or_none(frame), _int_or_none(compile_), autograd_id)


def frame_key(compile_id: str | None) -> str | None:
    """The part of a compile id that names the frame (``0/3`` -> ``0``): all compiles and
    recompiles of one code object share it."""
    if not compile_id:
        return None
    return compile_id.rsplit("/", 1)[0]


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None
