"""A restarted model server has lost the adapters loaded into it at run time; its next announcement brings them back.

Against Errata's real CPU server on a tiny model, over HTTP. What a restart does to the server's adapters is
done here by unloading the adapter through the same API (a restart with the same port is not needed for that).
"""

from __future__ import annotations

import logging

import openai
import pytest
from django.utils import timezone

from gpu_worker.announce import build_announcement, served_models
from pipeline.models.adapters import unload_lora_adapter
from tests.gpu_worker.tiny import build_tiny_adapter, build_tiny_model, serve_in_thread
from webapp.endpoints.announcements import parse_announcement
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.endpoints.tasks import endpoint_announced
from webapp.runs.models import Run, RunKind, RunStatus
from webapp.train.models import Checkpoint
from webapp.train.serving import adapters_restore, checkpoint_register, served_name

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("restore")
    base = build_tiny_model(root / "tiny")
    return {"base": base, "adapter": build_tiny_adapter(base, root / "adapter", seed=3)}


@pytest.fixture(scope="module")
def server(weights) -> str:
    from gpu_worker.engine import Engine, ModelSpec
    from gpu_worker.server import create_app

    with Engine([ModelSpec("tiny", str(weights["base"]))], num_threads=1) as engine:
        with serve_in_thread(create_app(engine)) as url:
            yield f"{url}/v1"


@pytest.fixture
def served(server, weights) -> ModelEndpoint:
    """A finished run's adapter, registered and served as Errata does when a run ends."""
    base = ModelEndpoint.objects.create(name="tiny", kind=EndpointKind.LOCAL, base_url=server, model_name="tiny",
                                        base_weights=str(weights["base"]))
    run = Run.objects.create(kind=RunKind.TRAIN, name="tutor", status=RunStatus.SUCCEEDED, config={"base_endpoint": base.pk})
    checkpoint = Checkpoint.objects.create(run=run, step=4, is_final=True, path=str(weights["adapter"]))
    endpoint = checkpoint_register(checkpoint=checkpoint)
    yield endpoint
    if endpoint.model_name in listed(server):  # the server outlives the test: leave it as it was
        unload_lora_adapter(base.to_config(), name=endpoint.model_name)


def listed(server: str) -> list[str]:
    with openai.OpenAI(base_url=server, api_key="none", max_retries=0) as client:
        return [model.id for model in client.models.list()]


def announcement_of(server: str) -> dict:
    """What gpu_worker/announce.py sends for this server: its /v1/models as it is now."""
    with openai.OpenAI(base_url=server, api_key="none", max_retries=0) as client:
        listing = {"data": [model.model_dump() for model in client.models.list()]}
    return build_announcement(base_url=server, models=served_models(listing), host="cpu-1", gpus=[], backend="cpu",
                              api_key_env="", interval_s=60.0, now=timezone.now())


def test_an_adapter_the_server_lost_is_served_again_on_its_next_announcement(server, served):
    base = ModelEndpoint.objects.get(model_name="tiny")
    unload_lora_adapter(base.to_config(), name=served.model_name)  # as a restart leaves it
    assert served.model_name not in listed(server)

    endpoint_announced(announcement_of(server))

    assert served.model_name in listed(server)
    with openai.OpenAI(base_url=server, api_key="none", max_retries=0) as client:
        reply = client.chat.completions.create(model=served.model_name, max_tokens=3,
                                               messages=[{"role": "user", "content": "hello"}])
    assert reply.choices[0].message.content is not None


def test_an_adapter_still_served_is_left_alone(server, served, caplog):
    with caplog.at_level(logging.INFO, logger="webapp.train.serving"):
        assert adapters_restore(announcement=parse_announcement(announcement_of(server))) == []
    assert not caplog.records


def test_without_its_base_on_the_server_the_adapter_is_logged_not_loaded(server, served, caplog):
    base = ModelEndpoint.objects.get(model_name="tiny")
    unload_lora_adapter(base.to_config(), name=served.model_name)
    payload = announcement_of(server)
    payload["models"] = [{"name": "other-base", "parent": None, "root": "/models/other"}]  # another base there now
    with caplog.at_level(logging.WARNING, logger="webapp.train.serving"):
        assert adapters_restore(announcement=parse_announcement(payload)) == []
    assert f"could not serve {served_name(served.checkpoints.get())} again: its base model is not served" in caplog.text
    assert served.model_name not in listed(server)
