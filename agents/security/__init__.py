"""Security signals: failed-login bursts and blocks, folded per user and per IP from
`auth.events`."""
