"""A model server announces what it serves: a Celery message to the web side at start and on every heartbeat.

The message goes by task name (``ANNOUNCE_TASK``) on the web side's ``default`` queue, as training events do,
so gpu_worker never imports the web app. It says where clients reach the server (the public base URL given
with ``--announce-url``), the models its own ``/v1/models`` lists (base models and LoRA adapters, loaded at
start or later), the host, the GPUs it sees and when it was sent. The web side registers one model endpoint
per served model. A broker that is down costs a warning in the log, never the server.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

ANNOUNCE_TASK = "webapp.endpoints.tasks.endpoint_announced"
ANNOUNCE_QUEUE = "default"
ANNOUNCE_URL_ENV = "ERRATA_ANNOUNCE_URL"
ANNOUNCE_INTERVAL_ENV = "ERRATA_ANNOUNCE_INTERVAL_S"
DEFAULT_INTERVAL_S = 60.0
PAYLOAD_VERSION = 1
STARTUP_POLL_S = 2.0  # how often to look whether the server answers yet (vLLM takes minutes to load)
# A heartbeat nobody took for this many intervals says nothing about now: the broker drops it.
EXPIRES_INTERVALS = 5
MIN_EXPIRES_S = 300


class AnnounceConfigError(ValueError):
    """A bad announce setting (URL or interval), said in plain words."""


# --- Settings and payload (pure) -------------------------------------------------------------


def check_announce_url(url: str) -> str:
    """The public base URL clients use, without a trailing slash: http(s), with a host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AnnounceConfigError(f"announce URL {url!r}: expected http(s)://HOST:PORT/v1, as clients reach this server")
    if parts.query or parts.fragment:
        raise AnnounceConfigError(f"announce URL {url!r}: a base URL has no ?query or #fragment")
    return url.strip().rstrip("/")


def announce_settings(url: str | None, interval_s: float | None,
                      environ: Mapping[str, str] | None = None) -> tuple[str, float] | None:
    """(public base URL, heartbeat seconds) from the options, else the environment; None: do not announce."""
    environ = os.environ if environ is None else environ
    url = url or environ.get(ANNOUNCE_URL_ENV, "").strip()
    if not url:
        return None
    if interval_s is None:
        raw = environ.get(ANNOUNCE_INTERVAL_ENV, "").strip()
        try:
            interval_s = float(raw) if raw else DEFAULT_INTERVAL_S
        except ValueError:
            raise AnnounceConfigError(f"{ANNOUNCE_INTERVAL_ENV}={raw!r}: expected a number of seconds") from None
    if not 1 <= interval_s <= 86400:
        raise AnnounceConfigError(f"the announce interval must be between 1 and 86400 seconds, not {interval_s}")
    return check_announce_url(url), float(interval_s)


def served_models(listing: Any, weights: Mapping[str, str] | None = None) -> list[dict]:
    """``[{name, parent, root}]`` from an OpenAI ``/v1/models`` answer (Errata's server or vLLM).

    ``root`` is where the weights come from (vLLM's and Errata's ``root``); ``weights`` (base name -> path)
    replaces it for base models whose root alone does not name the weights (a .gguf file in a folder).
    """
    weights = weights or {}
    cards = listing.get("data") if isinstance(listing, Mapping) else None
    if not isinstance(cards, list):
        raise ValueError("the /v1/models answer has no list under 'data'")
    models = []
    for card in cards:
        if not isinstance(card, Mapping) or not isinstance(card.get("id"), str):
            continue
        parent = card.get("parent") if isinstance(card.get("parent"), str) else None
        root = weights.get(card["id"]) if parent is None and card["id"] in weights else card.get("root")
        models.append({"name": card["id"], "parent": parent, "root": root if isinstance(root, str) else None})
    return models


def build_announcement(*, base_url: str, models: list[dict], host: str, gpus: list[dict], backend: str,
                       api_key_env: str, interval_s: float, now: datetime) -> dict:
    """The JSON message the web side's ``ANNOUNCE_TASK`` takes (webapp/endpoints/announcements.py reads it)."""
    return {
        "version": PAYLOAD_VERSION,
        "base_url": base_url,
        "host": host,
        "backend": backend,
        "gpus": gpus,
        "models": models,
        "api_key_env": api_key_env,  # the NAME of the variable holding the key, never the key
        "interval_s": interval_s,
        "sent_at": now.astimezone(timezone.utc).isoformat(),
    }


def parse_nvidia_smi(text: str, visible: str | None) -> list[dict]:
    """``[{index, name, memory_mib}]`` from ``nvidia-smi --query-gpu=index,uuid,name,memory.total
    --format=csv,noheader,nounits``, keeping only the GPUs CUDA_VISIBLE_DEVICES (``visible``) lets this process see."""
    gpus = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 4 or not fields[0].isdigit():
            continue
        index, uuid, name, memory = fields
        gpus.append({"index": int(index), "uuid": uuid, "name": name,
                     "memory_mib": int(memory) if memory.isdigit() else None})
    if visible is not None:
        wanted = [item.strip() for item in visible.split(",") if item.strip()]
        # CUDA stops at the first entry it cannot use ("-1" hides every GPU); it takes indices or UUID prefixes.
        chosen = []
        for item in wanted:
            match = next((gpu for gpu in gpus if str(gpu["index"]) == item or gpu["uuid"].startswith(item)), None)
            if match is None:
                break
            chosen.append(match)
        gpus = chosen
    return [{"index": gpu["index"], "name": gpu["name"], "memory_mib": gpu["memory_mib"]} for gpu in gpus]


def local_models_url(host: str, port: int) -> str:
    """Where this process reaches its own server's /v1/models: a wildcard bind answers on loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}/v1/models" if ":" in host else f"http://{host}:{port}/v1/models"


# --- The machine and the server (impure) -----------------------------------------------------


def visible_gpus() -> list[dict]:
    """The GPUs this process may use, from nvidia-smi (no CUDA context is made: vLLM wants all the memory)."""
    command = shutil.which("nvidia-smi")
    if command is None:
        return []
    try:
        done = subprocess.run([command, "--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=15, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        logger.warning("announce: nvidia-smi failed (%s); announcing no GPUs", error)
        return []
    return parse_nvidia_smi(done.stdout, os.environ.get("CUDA_VISIBLE_DEVICES"))


def fetch_models(url: str, api_key: str | None, timeout: float = 10.0) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def send_announcement(payload: dict, *, expires_s: float) -> None:
    """One message to the web side, by task name; raises when the broker cannot take it."""
    from gpu_worker.celery_app import app

    app.send_task(ANNOUNCE_TASK, args=[payload], queue=ANNOUNCE_QUEUE, expires=expires_s, retry=True,
                  retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 1, "interval_max": 2})


class Announcer:
    """A daemon thread: wait until the server answers, announce, then again every ``interval_s`` seconds."""

    def __init__(self, *, base_url: str, interval_s: float, models_url: str, api_key: str | None, api_key_env: str,
                 backend: str, weights: Mapping[str, str] | None = None,
                 send: Callable[[dict], None] | None = None, gpus: Callable[[], list[dict]] = visible_gpus):
        self.base_url, self.interval_s, self.models_url = base_url, interval_s, models_url
        self.api_key, self.backend, self.weights = api_key, backend, dict(weights or {})
        self.api_key_env = api_key_env if api_key else ""
        expires = max(EXPIRES_INTERVALS * interval_s, MIN_EXPIRES_S)
        self.send = send or (lambda payload: send_announcement(payload, expires_s=expires))
        self._gpus_of_machine, self._gpus = gpus, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="errata-announce", daemon=True)
        self._answered = False  # the server has answered once: it is up
        self._failing = False  # the last message could not be sent (warn once, not on every beat)
        self._announced: list[str] | None = None  # the names last announced (logged when they change)

    def start(self) -> Announcer:
        logger.info("announce: will announce this server as %s every %.0f s", self.base_url, self.interval_s)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.beat()
            except Exception:  # a bug here must not take serving down with it
                logger.exception("announce: the heartbeat failed")
                sent = True
            self._stop.wait(self.interval_s if sent or self._answered else STARTUP_POLL_S)

    def beat(self) -> bool:
        """Announce once; False when the server does not answer yet (or no longer does)."""
        try:
            listing = fetch_models(self.models_url, self.api_key)
            models = served_models(listing, self.weights)
        except (OSError, ValueError) as error:
            if self._answered:
                logger.warning("announce: %s did not answer (%s); skipped this heartbeat", self.models_url, error)
            return False
        self._answered = True
        if self._gpus is None:
            self._gpus = self._gpus_of_machine()
        payload = build_announcement(base_url=self.base_url, models=models, host=socket.gethostname(),
                                     gpus=self._gpus, backend=self.backend, api_key_env=self.api_key_env,
                                     interval_s=self.interval_s, now=datetime.now(timezone.utc))
        try:
            self.send(payload)
        except Exception as error:
            if not self._failing:
                logger.warning("announce: could not reach the Celery broker (%s: %s); serving goes on, "
                               "trying again every %.0f s", type(error).__name__, error, self.interval_s)
            self._failing = True
            return True
        if self._failing:
            logger.warning("announce: the broker takes messages again")
        names = [model["name"] for model in models]
        if names != self._announced:
            logger.info("announce: %s serves %s", self.base_url, ", ".join(names) or "nothing")
        self._failing, self._announced = False, names
        return True
