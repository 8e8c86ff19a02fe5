"""A model server's announcement (gpu_worker/announce.py), read strictly: a typed Announcement or an error."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

VERSION = 1
FIELDS = {"version", "base_url", "host", "backend", "gpus", "models", "api_key_env", "interval_s", "sent_at"}
MODEL_FIELDS = {"name", "parent", "root"}
GPU_FIELDS = {"index", "name", "memory_mib"}
BACKENDS = {"cpu", "vllm"}
MAX_MODELS = 500  # a server with more names than this is not one we should register blindly
MAX_GPUS = 64
# What vLLM and Errata's server accept as a served name (gpu_worker/vllm.py NAME_PATTERN), within model_name's 200.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}")
ENV_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


class AnnouncementError(ValueError):
    """An announcement Errata will not act on; the message names the field at fault."""


@dataclass(frozen=True)
class AnnouncedModel:
    name: str
    parent: str | None  # the base model of an adapter; None for a base model
    root: str | None  # where its weights come from, on the server's machine: a base's path, an adapter's folder


@dataclass(frozen=True)
class Announcement:
    base_url: str
    host: str
    backend: str
    gpus: tuple[dict, ...]
    models: tuple[AnnouncedModel, ...]
    api_key_env: str
    interval_s: float
    sent_at: datetime

    def weights_of(self, model: AnnouncedModel) -> str | None:
        """The base weights a local endpoint for ``model`` runs on: its own root, or its parent's for an adapter."""
        if model.parent is None:
            return model.root
        return next((m.root for m in self.models if m.name == model.parent), None)


def parse_announcement(payload: Any) -> Announcement:
    """Check every field of a version-1 announcement; AnnouncementError says which one is wrong."""
    if not isinstance(payload, Mapping):
        raise AnnouncementError(f"expected a JSON object, got {type(payload).__name__}")
    if payload.get("version") != VERSION:
        raise AnnouncementError(f"version: expected {VERSION}, got {payload.get('version')!r}")
    _exact_fields(payload, FIELDS, "announcement")
    backend = payload["backend"]
    if backend not in BACKENDS:
        raise AnnouncementError(f"backend: expected one of {sorted(BACKENDS)}, got {backend!r}")
    api_key_env = payload["api_key_env"]
    if not isinstance(api_key_env, str) or (api_key_env and not ENV_VAR_NAME.fullmatch(api_key_env)):
        raise AnnouncementError("api_key_env: expected the name of an environment variable, or an empty string")
    interval = payload["interval_s"]
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 1 <= interval <= 86400:
        raise AnnouncementError(f"interval_s: expected seconds between 1 and 86400, got {interval!r}")
    return Announcement(
        base_url=_base_url(payload["base_url"]), host=_text(payload["host"], "host", 255), backend=backend,
        gpus=_gpus(payload["gpus"]), models=_models(payload["models"]), api_key_env=api_key_env,
        interval_s=float(interval), sent_at=_moment(payload["sent_at"]),
    )


def _exact_fields(value: Mapping, expected: set[str], where: str) -> None:
    unknown, missing = sorted(set(value) - expected), sorted(expected - set(value))
    if unknown:
        raise AnnouncementError(f"{where}: unknown field {unknown[0]!r}")
    if missing:
        raise AnnouncementError(f"{where}: missing field {missing[0]!r}")


def _text(value: Any, where: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise AnnouncementError(f"{where}: expected non-empty text of at most {max_length} characters")
    return value.strip()


def _base_url(value: Any) -> str:
    url = _text(value, "base_url", 500).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise AnnouncementError(f"base_url: expected http(s)://HOST:PORT/v1, got {value!r}")
    return url


def _moment(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise AnnouncementError(f"sent_at: expected an ISO 8601 time with its time zone, got {value!r}")
    return moment


def _gpus(value: Any) -> tuple[dict, ...]:
    if not isinstance(value, list) or len(value) > MAX_GPUS:
        raise AnnouncementError(f"gpus: expected a list of at most {MAX_GPUS} GPUs")
    gpus = []
    for i, gpu in enumerate(value):
        where = f"gpus[{i}]"
        if not isinstance(gpu, Mapping):
            raise AnnouncementError(f"{where}: expected an object with index, name and memory_mib")
        _exact_fields(gpu, GPU_FIELDS, where)
        memory = gpu["memory_mib"]
        if not _whole(gpu["index"]) or not (memory is None or _whole(memory)):
            raise AnnouncementError(f"{where}: index and memory_mib are whole numbers >= 0 (memory_mib may be null)")
        gpus.append({"index": gpu["index"], "name": _text(gpu["name"], f"{where}.name", 200), "memory_mib": memory})
    return tuple(gpus)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _models(value: Any) -> tuple[AnnouncedModel, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_MODELS:
        raise AnnouncementError(f"models: expected a non-empty list of at most {MAX_MODELS} models")
    models = [_model(model, f"models[{i}]") for i, model in enumerate(value)]
    names = [model.name for model in models]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise AnnouncementError(f"models: the name {duplicate!r} is given twice")
    bases = {model.name for model in models if model.parent is None}
    for model in models:
        if model.parent is not None and model.parent not in bases:
            raise AnnouncementError(f"models: adapter {model.name!r} names a parent {model.parent!r} that is not "
                                    "a base model of this server")
    return tuple(models)


def _model(value: Any, where: str) -> AnnouncedModel:
    if not isinstance(value, Mapping):
        raise AnnouncementError(f"{where}: expected an object with name, parent and root")
    _exact_fields(value, MODEL_FIELDS, where)
    name, parent, root = value["name"], value["parent"], value["root"]
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise AnnouncementError(f"{where}.name: {name!r} is not a served model name")
    if parent is not None and (not isinstance(parent, str) or not MODEL_NAME.fullmatch(parent)):
        raise AnnouncementError(f"{where}.parent: expected a served model name or null, got {parent!r}")
    if root is not None:
        root = _text(root, f"{where}.root", 500)
    return AnnouncedModel(name=name, parent=parent, root=root)
