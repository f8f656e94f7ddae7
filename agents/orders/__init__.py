"""The orders pipeline: `materialize_orders` folds `orders.events` into the `orders` table and
PostgreSQL's order views."""
