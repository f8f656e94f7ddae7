"""Delivery tracking: `track_deliveries` folds status transitions and provider receipts into the
`deliveries` table and PostgreSQL."""
