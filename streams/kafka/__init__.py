"""Kafka plumbing: the topic catalog, topic administration, the wire format, codecs and the API's
producer."""
