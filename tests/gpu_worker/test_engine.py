"""The generation engine on a tiny model: batching, joining a running batch, adapters (also loaded and unloaded
while serving), stops, seeds, sampling."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from gpu_worker.engine import (
    AdapterNotFoundError,
    Engine,
    EngineClosedError,
    GenerationParams,
    InvalidRequestError,
    ModelSpec,
    UnknownModelError,
    sample_seed,
)
from gpu_worker.generation import TextTracker, keep_top_p, sample_next_tokens
from gpu_worker.loading import resolve_weights
from tests.conftest import wait_for
from tests.gpu_worker.tiny import build_tiny_adapter

PROMPTS = ["Once upon a time", "2 + 2 =", "The capital of France is", "a", "Hello, how are you today? I am"]
GREEDY = GenerationParams(max_tokens=24, ignore_eos=True)


@pytest.fixture(scope="module")
def engine(tiny_specs):
    """An engine of this module's own, so its counters start at zero."""
    with Engine(tiny_specs, max_batch_size=8, batch_window_ms=20, num_threads=1) as engine:
        yield engine


def texts(results) -> list[str]:
    return [samples[0].text for samples in results]


def alone(engine, model, prompt, params=GREEDY) -> str:
    return engine.generate_batch_sync(model, [prompt], params)[0][0].text


# ---- batching


def test_a_batch_of_prompts_of_different_lengths_answers_as_each_prompt_alone(engine):
    batched = texts(engine.generate_batch_sync("tiny", PROMPTS, GREEDY))
    assert batched == [alone(engine, "tiny", prompt) for prompt in PROMPTS]
    assert engine.stats()["max_rows_in_step"] >= len(PROMPTS)


def test_requests_arriving_together_share_each_forward_pass(tiny_specs):
    with Engine(tiny_specs, max_batch_size=8, batch_window_ms=50, num_threads=1) as fresh:

        async def four():
            return await asyncio.gather(*(fresh.generate("tiny", p, GREEDY) for p in PROMPTS[:4]))

        asyncio.run(four())
    stats = fresh.stats()  # once closed: the worker counts a step after handing out its tokens
    assert stats["max_rows_in_step"] == 4
    assert stats["steps"] == GREEDY.max_tokens  # one step per token for all four, not four times as many


def test_max_batch_size_caps_the_rows_of_a_forward_pass(tiny_specs):
    with Engine(tiny_specs, max_batch_size=2, num_threads=1) as small:
        results = small.generate_batch_sync("tiny", PROMPTS, replace(GREEDY, max_tokens=4))
    assert small.stats()["max_rows_in_step"] == 2
    assert all(samples[0].completion_tokens == 4 for samples in results)


def test_a_request_joins_a_running_batch_and_both_answer_as_alone(engine):
    expected_long = alone(engine, "tiny", PROMPTS[4], replace(GREEDY, max_tokens=200))
    expected_short = alone(engine, "tiny", PROMPTS[1])

    async def staggered():
        long = asyncio.create_task(engine.generate("tiny", PROMPTS[4], replace(GREEDY, max_tokens=200)))
        while engine.stats()["active_rows"] == 0:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # the long one is well into decoding: the cache columns differ
        short = await engine.generate("tiny", PROMPTS[1], GREEDY)
        assert not long.done()  # it finished first: it joined instead of waiting
        return (await long)[0].text, short[0].text

    assert asyncio.run(staggered()) == (expected_long, expected_short)


def test_base_and_adapters_in_flight_together_answer_as_alone(engine):
    expected = {model: alone(engine, model, PROMPTS[0]) for model in ("tiny", "tiny-a", "tiny-b")}
    assert len(set(expected.values())) == 3

    async def together():
        answers = await asyncio.gather(*(engine.generate(m, PROMPTS[0], GREEDY) for m in expected))
        return dict(zip(expected, (a[0].text for a in answers)))

    assert asyncio.run(together()) == expected


def test_each_row_keeps_its_own_max_tokens_and_stop_strings(engine):
    whole = alone(engine, "tiny", PROMPTS[0], replace(GREEDY, max_tokens=30))
    stop = whole[10:13]

    async def mixed():
        return await asyncio.gather(
            engine.generate("tiny", PROMPTS[0], replace(GREEDY, max_tokens=3)),
            engine.generate("tiny", PROMPTS[0], replace(GREEDY, max_tokens=30, stop=(stop,))),
            engine.generate("tiny", PROMPTS[0], replace(GREEDY, max_tokens=30)),
        )

    short, stopped, full = (r[0] for r in asyncio.run(mixed()))
    assert (short.text, short.finish_reason, short.completion_tokens) == (whole[:3], "length", 3)
    assert (stopped.text, stopped.finish_reason) == (whole[: whole.index(stop)], "stop")
    assert (full.text, full.finish_reason, full.completion_tokens) == (whole, "length", 30)


# ---- sampling and seeds


def test_a_seed_reproduces_samples_and_n_samples_differ(engine):
    params = GenerationParams(max_tokens=16, temperature=1.0, seed=3, n=3, ignore_eos=True)
    first = [s.text for s in engine.generate_batch_sync("tiny", [PROMPTS[0]], params)[0]]
    assert len(set(first)) == 3
    assert [s.text for s in engine.generate_batch_sync("tiny", [PROMPTS[0]], params)[0]] == first
    # sample i of a request is the single sample of a request seeded sample_seed(seed, i)
    second = replace(params, n=1, seed=sample_seed(3, 1))
    assert engine.generate_batch_sync("tiny", [PROMPTS[0]], second)[0][0].text == first[1]


def test_sampling_draws_each_row_from_its_own_generator():
    import torch

    logits = torch.randn(3, 50)

    def draw(rows):
        generators = [torch.Generator().manual_seed(seed) if seed is not None else None for seed in rows]
        temperatures = [1.0 if seed is not None else 0.0 for seed in rows]
        return sample_next_tokens(logits[: len(rows)], temperatures, [1.0] * len(rows), generators)

    assert int(draw([None])[0]) == int(logits[0].argmax())
    together = draw([None, 5, 6])
    assert int(draw([None, 5])[1]) == int(together[1])  # a row's draw does not depend on the rows beside it


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    import torch

    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.25, 0.25, 0.25, 0.25]])
    kept = keep_top_p(probs, torch.tensor([0.7, 1.0]))
    assert kept[0].tolist() == pytest.approx([0.5, 0.3, 0.0, 0.0])
    assert kept[1].tolist() == pytest.approx([0.25] * 4)
    assert keep_top_p(probs, torch.tensor([1e-6, 1e-6])).count_nonzero(dim=-1).tolist() == [1, 1]


# ---- text, stop strings, finishing


@pytest.fixture(scope="module")
def byte_tokenizer():
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer()


def feed(tracker: TextTracker, tokenizer, text: str) -> tuple[list[str], bool]:
    released, stopped = [], False
    for token in tokenizer(text, add_special_tokens=False)["input_ids"]:
        stopped = tracker.push(token)
        released.append(tracker.release(final=stopped))
        if stopped:
            break
    return released, stopped


def test_the_text_is_cut_at_the_first_stop_string(byte_tokenizer):
    tracker = TextTracker(byte_tokenizer, [], stop=("END", "xyz"))
    released, stopped = feed(tracker, byte_tokenizer, "abc xyz def END")
    assert stopped and tracker.text == "abc "
    assert "".join(released) == "abc "


def test_streaming_holds_back_what_may_start_a_stop_string(byte_tokenizer):
    tracker = TextTracker(byte_tokenizer, [], stop=("###",))
    released, stopped = feed(tracker, byte_tokenizer, "ab#c##d")
    assert not stopped
    assert released == ["a", "b", "", "#c", "", "", "##d"]


def test_a_multibyte_character_waits_for_its_last_byte(byte_tokenizer):
    tracker = TextTracker(byte_tokenizer, byte_tokenizer("prompt", add_special_tokens=False)["input_ids"])
    released, _ = feed(tracker, byte_tokenizer, "né€")
    assert released == ["n", "", "é", "", "", "€"]
    assert tracker.text == "né€"


def test_a_row_finishes_on_eos_max_tokens_or_the_context(byte_tokenizer):
    from gpu_worker.batching import Row

    loaded = SimpleNamespace(eos_ids=frozenset({1}), context_length=10)

    def row(params, prompt_length=3):
        return Row(None, 0, [50] * prompt_length, params, None, TextTracker(byte_tokenizer, []))

    eos = row(GenerationParams(max_tokens=5))
    eos.advance(1, loaded)
    assert (eos.finish_reason, eos.tracker.text, eos.completion_tokens) == ("stop", "", 1)
    ignoring = row(GenerationParams(max_tokens=5, ignore_eos=True))
    ignoring.advance(1, loaded)
    assert ignoring.finish_reason is None
    limited = row(GenerationParams(max_tokens=2))
    limited.advance(100, loaded)
    limited.advance(100, loaded)
    assert limited.finish_reason == "length"
    full = row(GenerationParams(max_tokens=50), prompt_length=9)
    full.advance(100, loaded)
    assert full.finish_reason == "length"


# ---- refusals, cancelling, closing


def test_unknown_models_and_impossible_requests_are_refused_before_any_work(engine):
    with pytest.raises(UnknownModelError):
        engine.generate_batch_sync("gpt-9", ["hi"], GREEDY)
    with pytest.raises(InvalidRequestError, match="maximum context length"):
        engine.generate_batch_sync("tiny", ["hi", "x" * 1020], GREEDY)
    with pytest.raises(InvalidRequestError, match="n must be"):
        engine.generate_batch_sync("tiny", ["hi"], GenerationParams(n=0))
    with pytest.raises(InvalidRequestError, match="empty"):
        engine.generate_batch_sync("tiny", [""], GREEDY)
    fitting = GenerationParams(max_tokens=500, fit_context=True, ignore_eos=True)
    fitted = engine.generate_batch_sync("tiny", ["x" * 1020], fitting)
    assert fitted[0][0].completion_tokens == 1024 - 1020


def test_cancelling_a_waiting_caller_stops_its_rows(engine):
    before = engine.stats()["rows_cancelled"]

    async def give_up():
        task = asyncio.create_task(engine.generate("tiny", PROMPTS[0], replace(GREEDY, max_tokens=900)))
        while engine.stats()["active_rows"] == 0:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # decoding for a while; 900 tokens take about a second
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(give_up())
    wait_for(lambda: engine.stats()["rows_cancelled"] > before, timeout=5, what="the row to be cancelled")
    wait_for(lambda: engine.stats()["active_rows"] == 0, timeout=5, what="no rows decoding")


def test_closing_ends_running_requests_with_an_error(tiny_specs):
    closing = Engine(tiny_specs, num_threads=1)
    failures = []

    def wait_long():
        try:
            closing.generate_batch_sync("tiny", ["hi"], replace(GREEDY, max_tokens=900))
        except EngineClosedError as error:
            failures.append(error)

    waiter = threading.Thread(target=wait_long)
    waiter.start()
    wait_for(lambda: closing.stats()["active_rows"] == 1, timeout=5, what="the request to start")
    closing.close()
    waiter.join(timeout=10)
    assert len(failures) == 1
    with pytest.raises(EngineClosedError):
        closing.generate_batch_sync("tiny", ["hi"], GREEDY)


# ---- what is served


def test_names_chat_prompts_and_parents(engine):
    assert engine.model_names() == ["tiny", "tiny-a", "tiny-b"]
    assert engine.parent("tiny-a") == "tiny" and engine.parent("tiny") is None
    assert engine.chat_prompt("tiny", [{"role": "user", "content": "hi"}]) == "<|user|>hi\n<|assistant|>"


def test_a_tokenizer_without_a_chat_template_gets_role_lines(engine):
    loaded = engine._models["tiny"]
    template, loaded.tokenizer.chat_template = loaded.tokenizer.chat_template, None
    try:
        prompt = engine.chat_prompt("tiny", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    finally:
        loaded.tokenizer.chat_template = template
    assert prompt == "system: Be brief.\nuser: hi\nassistant:"


def test_names_must_be_unique(tiny_model_dir):
    with pytest.raises(ValueError, match="served twice"):
        Engine([ModelSpec("tiny", str(tiny_model_dir), adapters={"tiny": "x"})])


def test_weights_resolve_from_a_folder_a_gguf_file_or_a_folder_holding_one(tmp_path, tiny_model_dir):
    assert resolve_weights(tiny_model_dir, None) == (Path(tiny_model_dir), None)
    (tmp_path / "model.gguf").write_bytes(b"")
    assert resolve_weights(tmp_path / "model.gguf", None) == (tmp_path, "model.gguf")
    assert resolve_weights(tmp_path, None) == (tmp_path, "model.gguf")
    assert resolve_weights(tmp_path, "other.gguf") == (tmp_path, "other.gguf")
    (tmp_path / "second.gguf").write_bytes(b"")
    with pytest.raises(ValueError, match="several"):
        resolve_weights(tmp_path, None)
    with pytest.raises(FileNotFoundError):
        resolve_weights(tmp_path / "missing", None)


# ---- adapters loaded and unloaded while serving


@pytest.fixture(scope="module")
def fresh_adapter(tiny_model_dir, tmp_path_factory) -> str:
    """An adapter no engine of the shared fixtures serves."""
    return str(build_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("fresh"), seed=3))


@pytest.fixture
def bare_engine(tiny_model_dir):
    """The base model alone: the first adapter loaded wraps it in a peft model."""
    with Engine([ModelSpec("tiny", str(tiny_model_dir))], num_threads=1) as engine:
        yield engine


async def decoding(engine, model: str, prompt: str, params: GenerationParams) -> asyncio.Task:
    """A generation task, returned once its row is decoding."""
    task = asyncio.create_task(engine.generate(model, prompt, params))
    while engine.stats()["active_rows"] == 0:
        await asyncio.sleep(0.005)
    return task


async def unload_started(engine, adapter: str) -> asyncio.Task:
    """An unload task, returned once the name is no longer served (its weights may still be in use)."""
    task = asyncio.create_task(engine.unload_adapter(adapter))
    while adapter in engine.model_names():
        await asyncio.sleep(0.005)
    return task


def broken_adapter(source: str, folder: Path) -> str:
    """A copy of ``source`` whose first weight has the wrong shape (as if trained on another base model)."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(source, folder)
    weights = load_file(folder / "adapter_model.safetensors")
    first = next(iter(weights))
    weights[first] = weights[first][:, :-1].contiguous()
    save_file(weights, folder / "adapter_model.safetensors")
    return str(folder)


def test_an_adapter_loaded_while_serving_answers_and_unloading_restores_the_bare_base(bare_engine, fresh_adapter):
    base_answer = alone(bare_engine, "tiny", PROMPTS[0])
    asyncio.run(bare_engine.load_adapter(None, "fresh", fresh_adapter))  # None: the only base served
    assert bare_engine.model_names() == ["tiny", "fresh"]
    assert (bare_engine.parent("fresh"), bare_engine.root("fresh")) == ("tiny", fresh_adapter)
    assert alone(bare_engine, "fresh", PROMPTS[0]) != base_answer
    assert alone(bare_engine, "tiny", PROMPTS[0]) == base_answer
    asyncio.run(bare_engine.unload_adapter("fresh"))
    assert bare_engine.model_names() == ["tiny"]
    assert bare_engine._models["tiny"].adapters == [] and not hasattr(bare_engine._models["tiny"].model, "peft_config")
    assert alone(bare_engine, "tiny", PROMPTS[0]) == base_answer
    with pytest.raises(UnknownModelError):
        alone(bare_engine, "fresh", PROMPTS[0])


def test_an_adapter_loaded_later_answers_as_one_loaded_at_startup_and_others_keep_theirs(tiny_specs, fresh_adapter):
    [spec] = tiny_specs
    with Engine([replace(spec, adapters={**spec.adapters, "fresh": fresh_adapter})], num_threads=1) as at_start:
        expected = {model: alone(at_start, model, PROMPTS[1]) for model in ("tiny", "tiny-a", "fresh")}
    with Engine(tiny_specs, num_threads=1) as engine:
        asyncio.run(engine.load_adapter("tiny", "fresh", fresh_adapter))
        assert {model: alone(engine, model, PROMPTS[1]) for model in expected} == expected


def test_a_load_between_decoding_steps_leaves_a_running_request_undisturbed(bare_engine, fresh_adapter):
    long = replace(GREEDY, max_tokens=200)
    expected = alone(bare_engine, "tiny", PROMPTS[4], long)

    async def load_while_decoding():
        running = await decoding(bare_engine, "tiny", PROMPTS[4], long)
        await bare_engine.load_adapter(None, "fresh", fresh_adapter)  # wraps the model the row decodes with
        assert not running.done()
        return (await running)[0].text

    assert asyncio.run(load_while_decoding()) == expected


def test_unloading_waits_for_the_adapters_requests_in_flight_and_refuses_new_ones(bare_engine, fresh_adapter):
    asyncio.run(bare_engine.load_adapter(None, "fresh", fresh_adapter))
    long = replace(GREEDY, max_tokens=300)
    expected = alone(bare_engine, "fresh", PROMPTS[4], long)

    async def unload_while_decoding():
        running = await decoding(bare_engine, "fresh", PROMPTS[4], long)
        unloading = await unload_started(bare_engine, "fresh")
        with pytest.raises(UnknownModelError):  # the name is gone at once, for new requests
            await bare_engine.generate("fresh", PROMPTS[0], GREEDY)
        assert not unloading.done()  # the weights stay until the running request is done with them
        result = (await running)[0]
        await unloading
        return result

    result = asyncio.run(unload_while_decoding())
    assert (result.text, result.completion_tokens) == (expected, 300)
    assert bare_engine._models["tiny"].adapters == []


def test_adapter_changes_are_refused_with_the_reason(tiny_specs, tiny_model_dir, tiny_adapter_dirs, tmp_path):
    two_bases = [*tiny_specs, ModelSpec("other", str(tiny_model_dir))]
    with Engine(two_bases, num_threads=1) as engine:

        def load(base, name, path=str(tiny_adapter_dirs["tiny-a"])):
            asyncio.run(engine.load_adapter(base, name, path))

        for taken in ("tiny-a", "tiny", "other"):
            with pytest.raises(InvalidRequestError, match=f"'{taken}' has already been loaded"):
                load("tiny", taken)
        with pytest.raises(AdapterNotFoundError, match=r"No adapter found .*\(no adapter_config.json there\)"):
            load("tiny", "nowhere", str(tmp_path))
        with pytest.raises(InvalidRequestError, match="several base models are served"):
            load(None, "which")
        with pytest.raises(UnknownModelError, match="gpt-9"):
            load("gpt-9", "new")
        with pytest.raises(InvalidRequestError, match="is a LoRA adapter"):
            load("tiny-a", "new")
        for unknown in ("nothing", "tiny"):  # a base model cannot be unloaded either (vLLM: 404)
            with pytest.raises(AdapterNotFoundError, match=f"'{unknown}' cannot be found"):
                asyncio.run(engine.unload_adapter(unknown))
        assert engine.model_names() == ["tiny", "tiny-a", "tiny-b", "other"]


@pytest.mark.parametrize("first", [True, False], ids=["onto-the-bare-base", "beside-other-adapters"])
def test_an_adapter_that_does_not_fit_is_refused_and_the_model_is_left_as_it_was(
        first, tiny_specs, tiny_model_dir, fresh_adapter, tmp_path):
    specs = [ModelSpec("tiny", str(tiny_model_dir))] if first else tiny_specs
    broken = broken_adapter(fresh_adapter, tmp_path / "broken")
    with Engine(specs, num_threads=1) as engine:
        before = {model: alone(engine, model, PROMPTS[2]) for model in engine.model_names()}
        with pytest.raises(InvalidRequestError, match="Loading lora broken failed: .*size mismatch"):
            asyncio.run(engine.load_adapter("tiny", "broken", broken))
        assert {model: alone(engine, model, PROMPTS[2]) for model in engine.model_names()} == before
        asyncio.run(engine.load_adapter("tiny", "fresh", fresh_adapter))  # and it still takes a good one
        assert alone(engine, "fresh", PROMPTS[2]) not in before.values()


def test_closing_ends_an_unload_still_waiting_for_its_requests(tiny_specs):
    closing = Engine(tiny_specs, num_threads=1)
    outcome = {}

    async def unload_then_close():
        running = await decoding(closing, "tiny-a", PROMPTS[0], replace(GREEDY, max_tokens=900))
        unloading = await unload_started(closing, "tiny-a")
        await asyncio.to_thread(closing.close)
        for name, task in (("generate", running), ("unload", unloading)):
            with pytest.raises(EngineClosedError):
                await task
            outcome[name] = "closed"

    asyncio.run(unload_then_close())
    assert outcome == {"generate": "closed", "unload": "closed"}
    with pytest.raises(EngineClosedError):
        asyncio.run(closing.load_adapter("tiny", "late", "/nowhere"))
