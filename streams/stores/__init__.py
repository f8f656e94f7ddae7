"""Stores: PostgreSQL (order and delivery views) and Redis (blocks, the webhook ledger, rate
limits)."""
