"""The worker process: the pipelines assembled into one Faust app, its metrics and its operator
views."""
