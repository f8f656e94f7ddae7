"""Notification dispatch: `dispatch_notifications` and the retry agents send each dispatch through
its channel's providers."""
