"""Compile-health metrics: what one compile event adds to which instrument (health thread).

=================================  ==================================================
``torch.compile.compiles``         +1 per frame compile (``CompilationMetrics`` with
                                   ``is_forward``, not ``is_runtime``);
                                   ``torch.compile.outcome`` = ``success`` or torch's
                                   ``fail_type`` (``BackendCompilerFailed``...)
``torch.compile.recompiles``       +1 per such compile with a ``recompile_reason``;
                                   ``torch.compile.recompile.reason`` = its first failed
                                   guard, normalised and bounded (``recompile_reasons.py``)
``torch.compile.graph_breaks``     +1 per graph break torch logs;
                                   ``torch.compile.graph_break.type`` = torch's
                                   ``gb_type``, ``torch.compile.graph_break.id`` =
                                   ``GBxxxx`` when registered; ``code.*`` = where the
                                   user's code broke
``torch.compile.duration``         seconds per compile (forward and lazy backward) and
                                   per phase torch reports: ``total``, ``dynamo``,
                                   ``backend``, ``inductor``, ``code_gen``, ``backward``
``torch.compile.in_flight``        +1 at torch's compile start callback, -1 at its end
=================================  ==================================================

Every point has ``torch.component`` = ``dynamo``, ``torch.distributed.rank`` when
known and (except ``in_flight``) the compiled frame's ``code.function.name``,
``code.file.path`` and ``code.line.number`` (its first line).
"""

from __future__ import annotations

from typing import Any

from torch_otel import names
from torch_otel.capture._torch_compile import graph_break_id
from torch_otel.capture.compile_events import CodeLocation, CompileFinished, GraphBreak
from torch_otel.trace.instruments import create_instrument
from torch_otel.trace.recompile_reasons import BoundedValues, normalise_recompile_reason

COMPONENT = "dynamo"
SUCCESS = "success"


def code_attributes(code: CodeLocation | None) -> dict[str, Any]:
    if code is None:
        return {}
    return {
        names.CODE_FUNCTION_NAME: code.function,
        names.CODE_FILE_PATH: code.file,
        names.CODE_LINE_NUMBER: code.line,
    }


class HealthInstruments:
    """The compile-health instruments of one meter, and the attribute rules above."""

    def __init__(self, meter: Any) -> None:
        self.compiles = create_instrument(meter, names.METRIC_COMPILES)
        self.recompiles = create_instrument(meter, names.METRIC_RECOMPILES)
        self.graph_breaks = create_instrument(meter, names.METRIC_GRAPH_BREAKS)
        self.durations = create_instrument(meter, names.METRIC_DURATION)
        self.in_flight = create_instrument(meter, names.METRIC_IN_FLIGHT)
        self.reasons = BoundedValues()
        self.break_types = BoundedValues()
        self._break_ids: dict[str, str | None] = {}

    @staticmethod
    def base(rank: int | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {names.TORCH_COMPONENT: COMPONENT}
        if rank is not None:
            attributes[names.TORCH_DISTRIBUTED_RANK] = rank
        return attributes

    def started(self, rank: int | None, delta: int = 1) -> None:
        self.in_flight.add(delta, self.base(rank))

    def finished(self, event: CompileFinished, code: CodeLocation | None) -> None:
        """One ``CompilationMetrics`` record (``code``: the frame, also for a backward)."""
        base = {**self.base(event.rank), **code_attributes(code)}
        if event.is_forward:
            outcome = event.fail_type or SUCCESS
            self.compiles.add(1, {**base, names.TORCH_COMPILE_OUTCOME: outcome})
            if event.recompile_reason:
                reason = self.reasons(normalise_recompile_reason(event.recompile_reason))
                self.recompiles.add(1, {**base, names.TORCH_COMPILE_RECOMPILE_REASON: reason})
        for phase, seconds in event.phase_seconds:
            self.durations.record(seconds, {**base, names.TORCH_COMPILE_PHASE: phase})

    def graph_break(self, event: GraphBreak) -> None:
        attributes = {**self.base(event.rank), **code_attributes(event.location)}
        break_type = self.break_types(event.break_type)
        attributes[names.TORCH_COMPILE_GRAPH_BREAK_TYPE] = break_type
        break_id = self._break_id(event.break_type) if break_type == event.break_type else None
        if break_id is not None:
            attributes[names.TORCH_COMPILE_GRAPH_BREAK_ID] = break_id
        self.graph_breaks.add(1, attributes)

    def _break_id(self, break_type: str) -> str | None:
        if break_type not in self._break_ids:
            if len(self._break_ids) >= 4 * self.break_types.limit:
                return None
            self._break_ids[break_type] = graph_break_id(break_type)
        return self._break_ids[break_type]
