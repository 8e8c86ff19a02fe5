"""Writes for endpoints: register or change one, check that it answers, register the packaged demo model."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pipeline.models import ChatResult, chat_once
from webapp.endpoints.models import EndpointKind, ModelEndpoint

CHECK_MESSAGES = [{"role": "user", "content": "Reply with one short friendly sentence."}]
CHECK_PARAMS = {"max_tokens": 24, "temperature": 0.0}
DEMO_ENDPOINT_NAME = "SmolLM2-135M-Instruct (demo)"


def endpoint_check_connection(*, endpoint: ModelEndpoint) -> ChatResult:
    """Send one short request and record whether it was answered, how fast, and what went wrong if not."""
    config = endpoint.to_config()
    # A connection check should answer quickly, not wait out a long job timeout and retries.
    config = type(config)(**{**config.__dict__, "timeout_s": min(config.timeout_s, 60.0), "max_retries": 1})
    result = chat_once(config, CHECK_MESSAGES, **CHECK_PARAMS)
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(
        last_check_at=timezone.now(),
        last_check_ok=result.ok,
        last_check_message=(result.texts[0] if result.ok else result.error or "no answer")[:2000],
        last_check_latency_ms=round(result.latency_s * 1000),
    )
    return result


@transaction.atomic
def demo_endpoint_ensure() -> ModelEndpoint:
    """The packaged SmolLM2, served by the CPU model server that `make run` starts, in every role."""
    endpoint, _ = ModelEndpoint.objects.update_or_create(
        name=DEMO_ENDPOINT_NAME,
        defaults=dict(
            kind=EndpointKind.LOCAL, base_url=settings.ERRATA_LOCAL_MODEL_URL, model_name="smollm2",
            base_weights="packaged:smollm2", as_student=True, as_teacher=True, as_assistant=True,
            default_params={"temperature": 0.0, "max_tokens": 256}, max_concurrency=8,
        ),
    )
    return endpoint
