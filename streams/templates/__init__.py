"""Notification templates as data: the sandbox they render in, their catalogue, their files."""
