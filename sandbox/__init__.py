"""A local stand-in for the notification providers (SendGrid, SMTP, Twilio, FCM, Meta Cloud): it
accepts sends, decides outcomes by recipient, and posts signed, batched delivery receipts to the
ingest API. For `make dev`, tests and benchmarks only; nothing in the pipeline depends on it."""
