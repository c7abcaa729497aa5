"""What an operator watches (OPS-04, OPS-07): ``figures`` (the one set of
figures the dashboards of both faces, their API twins and /metrics show),
``sampler`` (the last hour of connected clients and sync lag, kept in memory
by the running appliance's ``dashboard-sampler`` job), ``chart`` (that hour as
a server-rendered SVG, no script) and ``metrics`` (a Prometheus collector
that reads live state at scrape time)."""
