"""Export: the export-thread side (internal).

:mod:`.pipeline` (the thread, retries, drop accounting) takes batches from the
capture buffer and asks :mod:`.requests` for them in each :mod:`.sink`'s
representation: SDK records from :mod:`.mapping`, or OTLP bytes from
:mod:`.otlp_encoder`, both with bodies from :mod:`.body`. Exporters for logs,
spans and metrics are built by :mod:`.exporters` over one set of
:mod:`.transports`; :mod:`.otlp_grpc` / :mod:`.otlp_http` are the log exporters,
:mod:`.providers` the tracer and meter providers.
"""
