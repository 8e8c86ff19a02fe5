"""A final checkpoint becomes a model endpoint: a LoRA adapter is loaded into the running model server.

Errata's CPU server and vLLM take the same ``/v1/load_lora_adapter`` call, so one code path serves both.
Full fine-tunes cannot be added to a running server; they are registered as local models whose weights
a gpu_worker loads (gather's gpu queue), and a server can be started for them by hand.

An adapter loaded at run time lives in the server's memory only: a restarted server has lost it. Each
announcement a server sends (gpu_worker/announce.py) lists what it serves, and ``adapters_restore`` loads
again the runs' adapters it should serve and no longer lists.
"""

from __future__ import annotations

import logging

from django.db import transaction

from webapp.endpoints.announcements import Announcement
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.train.models import Checkpoint

logger = logging.getLogger(__name__)


class CheckpointServeError(RuntimeError):
    """The checkpoint could not be served; the message says what to do."""


def served_name(checkpoint: Checkpoint) -> str:
    """The model name clients send: stable per run, safe in URLs and vLLM's ``name=path`` pairs."""
    return f"errata-run-{checkpoint.run_id}"


def checkpoint_register(*, checkpoint: Checkpoint, user=None) -> ModelEndpoint:
    """Serve a final checkpoint and record it as a ModelEndpoint (idempotent: the same adapter registers again)."""
    if not checkpoint.is_final:
        raise CheckpointServeError("only a finished run's final checkpoint is served; resume the run to finish it")
    base = ModelEndpoint.objects.filter(pk=checkpoint.run.config.get("base_endpoint")).first()
    if base is None:
        raise CheckpointServeError("the model this run trained from is no longer registered")
    name = served_name(checkpoint)
    if checkpoint.kind == Checkpoint.Kind.ADAPTER:
        _load_adapter(checkpoint, base)
        fields = {"base_url": base.base_url, "model_name": name, "base_weights": base.base_weights,
                  "adapters": {name: checkpoint.path}, "api_key_env": base.api_key_env}
    else:
        fields = {"base_url": base.base_url, "model_name": name, "base_weights": checkpoint.path, "adapters": {}}
    with transaction.atomic():
        endpoint, _ = ModelEndpoint.objects.update_or_create(
            name=f"{checkpoint.run.name} (run {checkpoint.run_id})"[:120],
            defaults={**fields, "kind": EndpointKind.LOCAL, "as_student": True, "as_assistant": True,
                      "as_teacher": False, "default_params": dict(base.default_params),
                      "max_concurrency": base.max_concurrency, "created_by": user or checkpoint.run.created_by})
        Checkpoint.objects.filter(pk=checkpoint.pk).update(endpoint=endpoint)
    return endpoint


def adapters_restore(*, announcement: Announcement) -> list[ModelEndpoint]:
    """Load again the runs' adapters served from the announcing server that it no longer lists; the endpoints
    served again. One that cannot be (its base is not served there now, the folder is gone) is logged and left."""
    listed = {model.name for model in announcement.models}
    url = announcement.base_url
    lost = (Checkpoint.objects.filter(is_final=True, kind=Checkpoint.Kind.ADAPTER, endpoint__is_active=True,
                                      endpoint__base_url__in=[url, url + "/"])
            .exclude(endpoint__model_name__in=listed).select_related("endpoint", "run"))
    restored = []
    for checkpoint in lost:
        base = ModelEndpoint.objects.filter(pk=checkpoint.run.config.get("base_endpoint")).first()
        try:
            if base is None or base.model_name not in listed or base.base_url.rstrip("/") != url.rstrip("/"):
                raise CheckpointServeError(f"its base model is not served at {url}")
            _load_adapter(checkpoint, base)
        except CheckpointServeError as error:
            logger.warning("could not serve %s again: %s", checkpoint.endpoint.model_name, error)
        else:
            logger.info("served %s again at %s (the server had lost it)", checkpoint.endpoint.model_name, url)
            restored.append(checkpoint.endpoint)
    return restored


def _load_adapter(checkpoint: Checkpoint, base: ModelEndpoint) -> None:
    from pipeline.models.adapters import AdapterLoadError, load_lora_adapter

    try:
        load_lora_adapter(base.to_config(), name=served_name(checkpoint), path=checkpoint.path, base_model=base.model_name)
    except AdapterLoadError as error:
        raise CheckpointServeError(f"the model server at {base.base_url} did not load the adapter: {error}") from None
