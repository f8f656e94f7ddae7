"""The providers' circuit breakers made visible and operable: reports, their view, commands."""
