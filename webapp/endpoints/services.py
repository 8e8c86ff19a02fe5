"""Writes for endpoints: register or change one, check that it answers, register the packaged demo model,
record what model servers announce."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from pipeline.models import ChatResult, chat_once
from webapp.endpoints.announcements import AnnouncedModel, Announcement
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


# --- Announcements from model servers ---------------------------------------------------------

NAME_ATTEMPTS = 20


@transaction.atomic
def endpoint_record_announcement(*, announcement: Announcement, now: datetime | None = None) -> list[ModelEndpoint]:
    """One endpoint per announced model: found by base URL and model name, else created (student role only).

    An endpoint that exists keeps everything a person may have set (name, roles, weights, decoding, active);
    only when and where it was last seen change, and never back in time (heartbeats may arrive out of order).
    """
    now = now or timezone.now()
    seen_at = min(announcement.sent_at, now)  # a server clock ahead of ours must not put "last seen" in the future
    return [_record_announced_model(announcement, model, seen_at) for model in announcement.models]


def announced_matches(base_url: str, model_name: str):
    return ModelEndpoint.objects.filter(base_url__in=[base_url, base_url + "/"], model_name=model_name).order_by("pk")


def _record_announced_model(announcement: Announcement, model: AnnouncedModel, seen_at: datetime) -> ModelEndpoint:
    matches = announced_matches(announcement.base_url, model.name)
    seen = {"last_seen_at": seen_at, "announced_by": announcement.host[:255], "announced_gpus": list(announcement.gpus)}
    if matches.exists():
        matches.filter(Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=seen_at)).update(**seen)
        return matches.first()
    fields = {**_announced_fields(announcement, model), **seen}
    for name in _announced_names(announcement.base_url, model.name):
        try:
            with transaction.atomic():
                return ModelEndpoint.objects.create(name=name, **fields)
        except IntegrityError:  # the name is taken, perhaps by the same model from a heartbeat handled beside us
            found = matches.first()
            if found is not None:
                return found
    raise IntegrityError(f"no free name for {model.name} at {announcement.base_url}")


def _announced_fields(announcement: Announcement, model: AnnouncedModel) -> dict:
    """A new endpoint: a local model where the weights are known (so it can be trained), else a plain URL."""
    weights = announcement.weights_of(model)
    adapters = {model.name: model.root} if model.parent is not None and model.root else {}
    return {
        "kind": EndpointKind.LOCAL if weights else EndpointKind.OPENAI,
        "base_url": announcement.base_url, "model_name": model.name, "api_key_env": announcement.api_key_env,
        "base_weights": weights or "", "adapters": adapters,
        "as_student": True, "as_teacher": False, "as_assistant": False,
    }


def _announced_names(base_url: str, model_name: str):
    """"tiny on gpu-1:8001", then "tiny on gpu-1:8001 (2)", ... within the name column's 120 characters."""
    first = f"{model_name} on {urlsplit(base_url).netloc}"[:120]
    yield first
    for n in range(2, NAME_ATTEMPTS + 1):
        suffix = f" ({n})"
        yield first[: 120 - len(suffix)] + suffix
