"""Tiny randomly initialised models and LoRA adapters, built offline in milliseconds, and a threaded test server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

# A chat template small enough to read in a failing test's output; "<|assistant|>" opens the reply.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


# Larger than Llama's 0.02 so logits are far from flat: greedy picks are not near-ties that float
# noise between a batched and a single-row pass could flip, and samples depend on the prompt.
INITIALIZER_RANGE = 0.2


def build_tiny_model(folder: str | Path, *, seed: int = 0, context_length: int = 1024) -> Path:
    """Save a 2-layer Llama (hidden size 64) with a byte-level ByT5 tokenizer and a chat template in ``folder``.

    The same ``seed`` gives the same weights, so tests may compare answers between runs.
    """
    import torch
    from transformers import ByT5Tokenizer, LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    tokenizer = ByT5Tokenizer()
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=context_length,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
        initializer_range=INITIALIZER_RANGE,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # Random weights pick bytes that are not text and ByT5's unused extra ids as often as letters;
    # suppressing them (a generation-config setting servers honour) keeps replies readable ASCII.
    readable = {tokenizer.eos_token_id, _byte_id(ord("\n"))} | {_byte_id(c) for c in range(32, 127)}
    model.generation_config.suppress_tokens = [i for i in range(len(tokenizer)) if i not in readable]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _byte_id(byte: int) -> int:
    """ByT5's id for a byte: after the three special tokens pad, eos and unk."""
    return byte + 3


def build_tiny_adapter(base_folder: str | Path, folder: str | Path, *, seed: int) -> Path:
    """Save a LoRA adapter for the tiny model whose random non-zero weights change its answers.

    Different seeds give adapters that differ from each other as well as from the base.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    base = AutoModelForCausalLM.from_pretrained(base_folder)
    config = LoraConfig(
        r=8,
        lora_alpha=32,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        init_lora_weights=False,  # random B as well as A: the adapter is not a no-op
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)
    model = get_peft_model(base, config)
    model.save_pretrained(folder)
    return folder


@contextlib.contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """Run an ASGI app under uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
