"""Metrics: `collect_metrics` and `aggregate_metrics` fold every family into event-time windows on
`analytics.*`."""
