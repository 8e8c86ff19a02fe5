"""The gpu_worker Celery app: its broker from the environment only, as the web side configures the same broker."""

from __future__ import annotations

import os

import pytest

from gpu_worker.celery_app import BrokerConfigError, broker_config, make_app
from gpu_worker.tasks import generate_batch, ping

REDIS_TEST_URL = os.environ.get("ERRATA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def test_the_local_broker_uses_the_web_sides_folders(tmp_path):
    config = broker_config({"ERRATA_DATA_DIR": str(tmp_path)})
    assert config["broker_url"] == "filesystem://"
    options = config["broker_transport_options"]
    assert options["data_folder_in"] == options["data_folder_out"] == str(tmp_path / "celery-broker" / "queue")
    assert options["processed_folder"] == str(tmp_path / "celery-broker" / "processed")
    assert options["control_folder"] == str(tmp_path / "celery-broker" / "control")
    assert "visibility_timeout" not in options  # the filesystem transport has none


def test_redis_url_wins_with_a_visibility_timeout_of_48_hours(tmp_path):
    config = broker_config({"REDIS_URL": "redis://127.0.0.1:6379/0", "ERRATA_DATA_DIR": str(tmp_path)})
    assert config == {"broker_url": "redis://127.0.0.1:6379/0",
                      "broker_transport_options": {"visibility_timeout": 48 * 3600}}


def test_the_visibility_timeout_comes_from_the_environment():
    app = make_app({"REDIS_URL": "redis://127.0.0.1:6379/0", "ERRATA_BROKER_VISIBILITY_TIMEOUT_S": "7200"})
    assert app.conf.broker_transport_options == {"visibility_timeout": 7200}


@pytest.mark.parametrize("raw,message", [
    ("48h", "ERRATA_BROKER_VISIBILITY_TIMEOUT_S='48h' is not a whole number"),
    ("600", "ERRATA_BROKER_VISIBILITY_TIMEOUT_S=600 must be at least 3600"),
])
def test_a_bad_visibility_timeout_stops_the_worker_with_the_web_sides_message(tmp_path, raw, message):
    # Checked with the filesystem broker too, as webapp/settings.py does: a typo surfaces before Redis is set up.
    for environ in ({"REDIS_URL": "redis://127.0.0.1:6379/0"}, {"ERRATA_DATA_DIR": str(tmp_path)}):
        with pytest.raises(BrokerConfigError) as raised:
            make_app({**environ, "ERRATA_BROKER_VISIBILITY_TIMEOUT_S": raw})
        assert str(raised.value) == message


@pytest.mark.services
def test_kombus_redis_channel_takes_the_visibility_timeout():
    """The option's name is kombu's: a misspelt key would be ignored, leaving kombu's one hour."""
    import redis

    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        pytest.skip(f"needs Redis at {REDIS_TEST_URL}: {type(error).__name__}")
    app = make_app({"REDIS_URL": REDIS_TEST_URL, "ERRATA_BROKER_VISIBILITY_TIMEOUT_S": "7200"})
    with app.connection_for_write() as connection:
        assert connection.default_channel.visibility_timeout == 7200


def test_the_app_creates_its_broker_folders_and_registers_the_tasks_by_name(tmp_path):
    app = make_app({"ERRATA_DATA_DIR": str(tmp_path)})
    assert (tmp_path / "celery-broker" / "queue").is_dir() and (tmp_path / "celery-broker" / "control").is_dir()
    assert app.conf.task_default_queue == "gpu"
    assert generate_batch.name == "gpu_worker.generate_batch" and ping.name == "gpu_worker.ping"
    for task in (generate_batch, ping):
        assert task.acks_late and task.reject_on_worker_lost
