"""Fixtures for the pipeline tests: the fault-injecting OpenAI-compatible server."""

from __future__ import annotations

import pytest

from tests.fakeopenai import FakeOpenAI


@pytest.fixture(scope="session")
def fake_openai_process():
    """One server process for the whole session (starting one costs a fraction of a second)."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(fake_openai_process):
    """The server with default behaviour (no latency, no faults) and zeroed counters."""
    fake_openai_process.configure()
    return fake_openai_process
