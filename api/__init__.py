"""The aiohttp service: webhook ingest, views, health and metrics."""
