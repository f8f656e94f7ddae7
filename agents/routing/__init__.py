"""Notification routing: events that cause notifications -> requests -> routed, rendered dispatches
(`request_notifications`, `route_notifications`)."""
