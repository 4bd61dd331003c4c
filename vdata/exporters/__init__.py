"""Optional exporters of vdata's statement events and pool state.

- ``vdata.exporters.otel``: OpenTelemetry spans and metrics (extra ``otel``).
- ``vdata.exporters.prometheus``: a Prometheus collector (extra ``prometheus``).

Each imports its library only when imported itself; ``vdata.QueryStats``
needs neither.
"""
