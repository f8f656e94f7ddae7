"""The effective notification preferences of each user, materialized into PostgreSQL."""
