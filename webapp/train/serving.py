"""A final checkpoint becomes a model endpoint: a LoRA adapter is loaded into the running model server.

Errata's CPU server and vLLM take the same ``/v1/load_lora_adapter`` call, so one code path serves both.
Full fine-tunes cannot be added to a running server; they are registered as local models whose weights
a gpu_worker loads (gather's gpu queue), and a server can be started for them by hand.
"""

from __future__ import annotations

from django.db import transaction

from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.train.models import Checkpoint


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
        from pipeline.models.adapters import AdapterLoadError, load_lora_adapter

        try:
            load_lora_adapter(base.to_config(), name=name, path=checkpoint.path, base_model=base.model_name)
        except AdapterLoadError as error:
            raise CheckpointServeError(f"the model server at {base.base_url} did not load the adapter: {error}") from None
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
