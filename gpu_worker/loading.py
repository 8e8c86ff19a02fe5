"""Loading a served model: HF folder or GGUF file, its tokenizer, its LoRA adapters, and prompt building."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gpu_worker.engine import ModelSpec

DEFAULT_CONTEXT_LENGTH = 2048  # when a config names no maximum position


@dataclass
class LoadedModel:
    """One base model in memory, with the adapters loaded on it and what decoding needs to know."""

    name: str
    model: Any  # a transformers causal LM, or a peft PeftModel wrapping it when there are adapters
    tokenizer: Any
    adapters: list[str] = field(default_factory=list)
    eos_ids: frozenset[int] = frozenset()
    suppress_ids: tuple[int, ...] = ()
    context_length: int = DEFAULT_CONTEXT_LENGTH
    leading_special_ids: tuple[int, ...] = ()  # what the tokenizer puts in front of a text (a BOS)
    active_adapter: str | None = None  # what the next forward pass runs with (changed by ``activate``)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def activate(self, adapter: str | None) -> None:
        """Make the next forward passes run with ``adapter`` (None: the bare base model).

        Switching only when the adapter changes: peft's ``disable_adapter()`` context walks every
        module on entry and exit, which tripled the cost of a small model's decoding step.
        """
        if adapter == self.active_adapter:
            return
        base = self.model.base_model
        if adapter is None:
            base.disable_adapter_layers()
        else:
            if self.active_adapter is None:
                base.enable_adapter_layers()
            self.model.set_adapter(adapter)
        self.active_adapter = adapter

    def encode(self, prompt: str) -> list[int]:
        """Token ids of a prompt: the tokenizer's leading special tokens (once), never a trailing EOS."""
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        lead = list(self.leading_special_ids)
        if lead and ids[: len(lead)] != lead:
            ids = lead + ids
        return ids

    def chat_prompt(self, messages: list[dict], *, continue_final_message: bool = False) -> str:
        """The prompt for a chat: the tokenizer's chat template, or "role: content" lines without one.

        With ``continue_final_message`` the last (assistant) message is left open for the model to go on.
        """
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=not continue_final_message,
                continue_final_message=continue_final_message,
            )
        lines = [f"{message['role']}: {message['content']}" for message in messages]
        return "\n".join(lines if continue_final_message else lines + ["assistant:"])


def resolve_weights(path: str | Path, gguf_file: str | None) -> tuple[Path, str | None]:
    """(folder, GGUF file name or None) for a spec's path: an HF folder, a folder with one .gguf, or a .gguf file."""
    path = Path(path)
    if gguf_file:
        return path, gguf_file
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name
    if path.is_dir() and not (path / "config.json").exists():
        found = sorted(path.glob("*.gguf"))
        if len(found) == 1:
            return path, found[0].name
        if len(found) > 1:
            raise ValueError(f"{path} holds several .gguf files; name one with gguf_file")
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}")
    return path, None


def load_model(spec: ModelSpec, *, device: str = "cpu", dtype: str = "auto") -> LoadedModel:
    """Load a spec's weights, tokenizer and adapters, ready for inference on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf_file = resolve_weights(spec.path, spec.gguf_file)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(folder, **extra)
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype), **extra)
    model.to(device)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if spec.adapters:
        model = _with_adapters(model, spec.adapters)
    model.eval()
    return LoadedModel(
        name=spec.name,
        model=model,
        tokenizer=tokenizer,
        adapters=list(spec.adapters),
        active_adapter=next(iter(spec.adapters), None),  # peft activates the first adapter it loads
        eos_ids=_eos_ids(model, tokenizer),
        suppress_ids=tuple(getattr(model.generation_config, "suppress_tokens", None) or ()),
        context_length=_context_length(model.config),
        leading_special_ids=_leading_special_ids(tokenizer),
    )


def _with_adapters(model, adapters: dict[str, str]):
    from peft import PeftModel

    names = list(adapters)
    wrapped = PeftModel.from_pretrained(model, adapters[names[0]], adapter_name=names[0])
    for name in names[1:]:
        wrapped.load_adapter(adapters[name], adapter_name=name)
    return wrapped


def _eos_ids(model, tokenizer) -> frozenset[int]:
    ids = set()
    for source in (model.generation_config.eos_token_id, model.config.eos_token_id, tokenizer.eos_token_id):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(source)
    return frozenset(ids)


def _context_length(config) -> int:
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(text_config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_CONTEXT_LENGTH


def _leading_special_ids(tokenizer) -> tuple[int, ...]:
    """Special tokens the tokenizer adds in front of every text (a BOS for Llama, none for GPT-2 or ByT5)."""
    with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
    without = tokenizer("a", add_special_tokens=False)["input_ids"]
    if not without:
        return ()
    start = with_special.index(without[0]) if without[0] in with_special else 0
    return tuple(with_special[:start])
