"""Security signals: failed logins, new devices and blocks, folded per user and per IP from
`auth.events`."""
