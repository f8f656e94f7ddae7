"""`tributary replay`: a PostgreSQL view rebuilt from its topic with the worker's own fold."""
