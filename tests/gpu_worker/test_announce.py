"""A model server announces what it serves: settings, the payload, GPUs from nvidia-smi, the heartbeat thread,
and real `serve` processes that announce through a broker, or keep serving when the broker is down."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gpu_worker.announce import (
    ANNOUNCE_TASK,
    AnnounceConfigError,
    Announcer,
    announce_settings,
    build_announcement,
    local_models_url,
    parse_nvidia_smi,
    served_models,
)
from gpu_worker.cli import build_parser, main
from tests.conftest import REPO, free_port, wait_for
from tests.gpu_worker.conftest import TINY

NVIDIA_SMI = """\
0, GPU-1111aaaa-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3, 81559
1, GPU-2222bbbb-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3, 81559
2, GPU-3333cccc-0000-0000-0000-000000000000, NVIDIA A10, [N/A]
"""


# --- Settings -------------------------------------------------------------------------------


def test_announcing_is_off_without_a_url():
    assert announce_settings(None, None, environ={}) is None


def test_the_options_win_over_the_environment_and_the_url_loses_its_trailing_slash():
    environ = {"ERRATA_ANNOUNCE_URL": "http://env-host:1/v1", "ERRATA_ANNOUNCE_INTERVAL_S": "30"}
    assert announce_settings("http://gpu-1:8001/v1/", 5, environ=environ) == ("http://gpu-1:8001/v1", 5.0)
    assert announce_settings(None, None, environ=environ) == ("http://env-host:1/v1", 30.0)
    assert announce_settings(None, None, environ={"ERRATA_ANNOUNCE_URL": "https://a.example/v1"}) == (
        "https://a.example/v1", 60.0)


@pytest.mark.parametrize("url,interval,environ,message", [
    ("gpu-1:8001/v1", None, {}, "expected http(s)://HOST:PORT/v1"),
    ("ftp://gpu-1/v1", None, {}, "expected http(s)://HOST:PORT/v1"),
    ("http://gpu-1:8001/v1?x=1", None, {}, "no ?query"),
    ("http://gpu-1:8001/v1", 0.5, {}, "between 1 and 86400 seconds"),
    (None, None, {"ERRATA_ANNOUNCE_URL": "http://a/v1", "ERRATA_ANNOUNCE_INTERVAL_S": "soon"}, "expected a number"),
])
def test_bad_settings_are_refused_in_plain_words(url, interval, environ, message):
    with pytest.raises(AnnounceConfigError, match=re.escape(message)):
        announce_settings(url, interval, environ=environ)


def test_serve_refuses_a_bad_announce_url_before_loading_anything(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["serve", "--smollm2", "--announce-url", "gpu-1:8001"])
    assert stopped.value.code == 2
    assert "announce URL 'gpu-1:8001'" in capsys.readouterr().err


def test_the_options_are_on_the_serve_command():
    args = build_parser().parse_args(["serve", "--smollm2", "--announce-url", "http://h:1/v1", "--announce-interval", "7"])
    assert (args.announce_url, args.announce_interval) == ("http://h:1/v1", 7.0)


@pytest.mark.parametrize("host,url", [
    ("0.0.0.0", "http://127.0.0.1:8001/v1/models"),  # a wildcard bind answers on loopback
    ("", "http://127.0.0.1:8001/v1/models"),
    ("::", "http://[::1]:8001/v1/models"),
    ("10.0.0.5", "http://10.0.0.5:8001/v1/models"),
])
def test_the_server_is_asked_for_its_models_where_it_listens(host, url):
    assert local_models_url(host, 8001) == url


# --- Payload ----------------------------------------------------------------------------------


def test_served_models_are_read_from_v1_models_with_bases_and_adapters():
    listing = {"object": "list", "data": [
        {"id": "student", "root": "/models/student", "parent": None},
        {"id": "tutor", "root": "/adapters/tutor", "parent": "student"},
        {"id": "gguf", "root": "/models/gguf-folder", "parent": None},
        "not a card",  # skipped, not fatal: a server we do not control may add odd entries
    ]}
    assert served_models(listing, {"gguf": "/models/gguf-folder/w.gguf"}) == [
        {"name": "student", "parent": None, "root": "/models/student"},
        {"name": "tutor", "parent": "student", "root": "/adapters/tutor"},
        {"name": "gguf", "parent": None, "root": "/models/gguf-folder/w.gguf"},  # the weights file, not its folder
    ]


def test_a_listing_without_data_is_an_error():
    with pytest.raises(ValueError, match="no list under 'data'"):
        served_models({"error": "busy"})


def test_the_announcement_carries_url_models_host_gpus_and_time():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    payload = build_announcement(base_url="http://gpu-1:8001/v1", models=[{"name": "a", "parent": None, "root": "/a"}],
                                 host="gpu-1", gpus=[{"index": 0, "name": "H100", "memory_mib": 81559}],
                                 backend="vllm", api_key_env="ERRATA_MODEL_SERVER_KEY", interval_s=60.0, now=now)
    assert payload == {
        "version": 1, "base_url": "http://gpu-1:8001/v1", "host": "gpu-1", "backend": "vllm",
        "gpus": [{"index": 0, "name": "H100", "memory_mib": 81559}],
        "models": [{"name": "a", "parent": None, "root": "/a"}], "api_key_env": "ERRATA_MODEL_SERVER_KEY",
        "interval_s": 60.0, "sent_at": "2026-01-02T03:04:05+00:00",
    }
    assert json.loads(json.dumps(payload)) == payload  # it travels as JSON


@pytest.mark.parametrize("visible,indices", [
    (None, [0, 1, 2]),  # CUDA_VISIBLE_DEVICES unset: every GPU
    ("1,0", [1, 0]),  # CUDA numbers the visible ones in this order
    ("GPU-3333", [2]),  # a UUID prefix
    ("", []),  # set but empty: no GPU
    ("-1", []),
    ("0,7,1", [0]),  # CUDA stops at the first entry it cannot use
])
def test_gpus_come_from_nvidia_smi_as_cuda_visible_devices_allows(visible, indices):
    gpus = parse_nvidia_smi(NVIDIA_SMI, visible)
    assert [gpu["index"] for gpu in gpus] == indices
    if indices == [0, 1, 2]:
        assert gpus[0] == {"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559}
        assert gpus[2]["memory_mib"] is None  # "[N/A]"


# --- The heartbeat thread, against Errata's server on the tiny model -----------------------


def announcer(url: str, sent: list, **options) -> Announcer:
    def send(payload):
        if options.get("broker_down"):
            raise ConnectionRefusedError(111, "Connection refused")
        sent.append(payload)

    return Announcer(base_url="http://public:8001/v1", interval_s=options.get("interval_s", 60), models_url=url,
                     api_key=None, api_key_env="ERRATA_MODEL_SERVER_KEY", backend="cpu", send=send, gpus=lambda: [])


def test_a_beat_announces_every_served_name_with_its_weights(tiny_server, tiny_model_dir, tiny_adapter_dirs):
    sent: list = []
    assert announcer(f"{tiny_server}/v1/models", sent).beat()
    (payload,) = sent
    assert payload["base_url"] == "http://public:8001/v1" and payload["api_key_env"] == ""  # no key: no variable
    assert payload["models"] == [
        {"name": TINY, "parent": None, "root": str(tiny_model_dir)},
        *({"name": name, "parent": TINY, "root": str(path)} for name, path in tiny_adapter_dirs.items())]


def test_nothing_is_sent_while_the_server_does_not_answer(caplog):
    sent: list = []
    assert not announcer("http://127.0.0.1:9/v1/models", sent).beat()
    assert sent == [] and "did not answer" not in caplog.text  # still starting: not worth a warning


def test_a_broker_that_is_down_costs_one_warning_not_the_server(tiny_server, caplog):
    beats = announcer(f"{tiny_server}/v1/models", [], broker_down=True)
    assert beats.beat() and beats.beat()  # no exception: the server goes on
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "could not reach the Celery broker" in r.message]
    assert len(warnings) == 1 and "ConnectionRefusedError" in warnings[0].message


def test_the_thread_announces_at_start_and_again_on_every_heartbeat(tiny_server):
    sent: list = []
    beats = announcer(f"{tiny_server}/v1/models", sent, interval_s=1).start()
    try:
        wait_for(lambda: len(sent) >= 2, timeout=10, what="two heartbeats")
    finally:
        beats.stop()
    first, second = (datetime.fromisoformat(payload["sent_at"]) for payload in sent[:2])
    assert 0.8 <= (second - first).total_seconds() <= 3


# --- Real `serve` processes ---------------------------------------------------------------------


def start_serve(model_dir: Path, port: int, log_path: Path, **env: str | None) -> subprocess.Popen:
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gpu_worker", "serve", "--model", f"tiny={model_dir}", "--port", str(port),
             "--backend", "cpu", "--num-threads", "1", "--announce-url", f"http://public-host:{port}/v1",
             "--announce-interval", "1"], cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT)


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def queued_announcements(folder: Path) -> list[dict]:
    """The task messages kombu's filesystem transport wrote for the `default` queue."""
    found = []
    for path in sorted(folder.glob("*.default.msg")):
        message = json.loads(path.read_text())
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.append({"task": message["headers"]["task"], "payload": args[0]})
    return found


@pytest.mark.slow
def test_serve_announces_its_models_on_the_broker_at_start_and_on_each_heartbeat(tiny_model_dir, tmp_path):
    port = free_port()
    server = start_serve(tiny_model_dir, port, tmp_path / "serve.log", REDIS_URL=None, ERRATA_DATA_DIR=str(tmp_path))
    queue = tmp_path / "celery-broker" / "queue"
    try:
        messages = wait_for(lambda: server.poll() is None and len(queued_announcements(queue)) >= 2 and
                            queued_announcements(queue), timeout=90, what=f"two announcements\n{_log(tmp_path)}")
    finally:
        stop(server)
    assert {message["task"] for message in messages} == {ANNOUNCE_TASK}
    payload = messages[0]["payload"]
    assert payload["base_url"] == f"http://public-host:{port}/v1" and payload["backend"] == "cpu"
    assert payload["models"] == [{"name": "tiny", "parent": None, "root": str(tiny_model_dir)}]
    assert payload["host"] and isinstance(payload["gpus"], list) and payload["interval_s"] == 1.0
    assert "only a web side on this machine will hear it" in _log(tmp_path)


@pytest.mark.slow
def test_serve_keeps_serving_when_the_broker_is_down(tiny_model_dir, tmp_path):
    port = free_port()
    server = start_serve(tiny_model_dir, port, tmp_path / "serve.log", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        wait_for(lambda: server.poll() is not None or "could not reach the Celery broker" in _log(tmp_path),
                 timeout=90, what="the broker warning")
        time.sleep(2.5)  # two more heartbeats fail
        assert server.poll() is None, _log(tmp_path)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as response:
            assert [card["id"] for card in json.loads(response.read())["data"]] == ["tiny"]
    finally:
        stop(server)
    assert _log(tmp_path).count("could not reach the Celery broker") == 1  # warned once, not on every beat


def _log(folder: Path) -> str:
    return (folder / "serve.log").read_text()
