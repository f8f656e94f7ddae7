"""Sessions and devices of users, folded from `auth.events`: `track_sessions`."""
