"""The Kafka settings' security (`KafkaSettings.security_protocol` and friends) as each client
library spells it: librdkafka's properties (confluent-kafka: admin, CLI), aiokafka's keyword
arguments (the API's producer, the CLI's reader) and Faust's credentials (the worker, through
`streams.runtime`). One place, so that every client of a deployment authenticates the same way.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from streams.settings import KafkaSettings


def librdkafka_security(kafka: KafkaSettings) -> dict[str, str]:
    config: dict[str, str] = {"security.protocol": kafka.security_protocol}
    if kafka.security_protocol.startswith("SASL"):
        config["sasl.mechanism"] = kafka.sasl_mechanism
        config["sasl.username"] = kafka.sasl_username or ""
        if kafka.sasl_password is not None:
            config["sasl.password"] = kafka.sasl_password.get_secret_value()
    files = {
        "ssl.ca.location": kafka.ssl_cafile,
        "ssl.certificate.location": kafka.ssl_certfile,
        "ssl.key.location": kafka.ssl_keyfile,
    }
    config |= {name: path for name, path in files.items() if path}
    return config


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """For SSL and SASL_SSL: the broker verified (against `ssl_cafile`, else the system's CAs),
    and our certificate presented when one is configured."""
    if not kafka.security_protocol.endswith("SSL"):
        return None
    context: ssl.SSLContext = create_ssl_context(
        cafile=kafka.ssl_cafile, certfile=kafka.ssl_certfile, keyfile=kafka.ssl_keyfile
    )
    return context


def aiokafka_security(kafka: KafkaSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    if kafka.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    context = ssl_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    return options
