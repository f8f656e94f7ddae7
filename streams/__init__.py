"""The streaming core: settings, errors, topic catalog, codecs and adapters to Kafka, PostgreSQL
and Redis. Both `agents` and `api` build on it; it never imports either of them."""
