"""The run-of-its-own sections the benchmarks and the chaos run share (`sandboxed_sections`)."""

from __future__ import annotations

from scripts.bench_processes import sandboxed_sections
from streams.settings import HTTP_PROVIDER_CREDENTIALS, Settings


def test_every_provider_goes_to_the_runs_sandbox_and_its_receipts_to_the_runs_api() -> None:
    base = Settings()
    sections = sandboxed_sections(base, "bench-r1")
    api, sandbox, providers = sections["api"], sections["sandbox"], sections["providers"]
    sandbox_url = f"http://127.0.0.1:{sandbox.http_port}"
    api_url = f"http://127.0.0.1:{api.port}"
    assert len({api.port, sandbox.http_port, sandbox.smtp_port}) == 3
    assert sandbox.api_url == api_url
    assert {
        providers.sendgrid_base_url,
        providers.twilio_base_url,
        providers.fcm_base_url,
        providers.meta_base_url,
    } == {sandbox_url}
    assert providers.smtp_port == sandbox.smtp_port
    assert providers.twilio_status_callback_url == f"{api_url}/v1/webhooks/providers/twilio"
    for name in HTTP_PROVIDER_CREDENTIALS:
        secret = getattr(providers, name)
        assert secret is not None
        assert secret.get_secret_value() == f"bench-r1-{name}"
    # The rest of each section is the base's.
    assert api.model_copy(update={"port": base.api.port}) == base.api
