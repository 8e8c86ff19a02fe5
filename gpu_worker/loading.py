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

    def add_adapter(self, name: str, path: str) -> None:
        """Load the peft LoRA folder ``path`` as adapter ``name``; call between forward passes (it swaps modules).

        The first adapter wraps the bare model in a PeftModel. A load that fails leaves the model as it was,
        and what the next forward pass runs with is unchanged either way.
        """
        import torch
        from peft import PeftModel

        wrapped = bool(self.adapters)
        with torch.inference_mode(False):  # the worker decodes in inference mode; weights are loaded as at startup
            try:
                if wrapped:
                    self.model.load_adapter(path, adapter_name=name, torch_device=str(self.device))
                else:
                    self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name,
                                                           torch_device=str(self.device))
            except Exception:
                self._undo_failed_load(name, wrapped)
                raise
        self.model.eval()
        self.adapters.append(name)
        self._reactivate(self.active_adapter)

    def remove_adapter(self, name: str) -> None:
        """Delete adapter ``name``'s weights (no row may be using it); the last one leaving unwraps the bare model."""
        self.adapters.remove(name)
        if not self.adapters:
            self.model = self.model.unload()  # drops the LoRA layers without merging them
            self.active_adapter = None
            return
        self.model.delete_adapter(name)
        self._reactivate(None if self.active_adapter == name else self.active_adapter)

    def _reactivate(self, adapter: str | None) -> None:
        """Set the adapter the next forward passes run with, whatever peft switched on while adding or deleting."""
        if adapter is None:
            self.model.base_model.disable_adapter_layers()
        else:
            self.model.base_model.enable_adapter_layers()
            self.model.set_adapter(adapter)
        self.active_adapter = adapter

    def _undo_failed_load(self, name: str, wrapped: bool) -> None:
        if not wrapped:  # PeftModel.from_pretrained may have put LoRA layers into the bare model before failing
            _strip_lora_layers(self.model)
            return
        if name in self.model.peft_config:
            self.model.delete_adapter(name)
        self._reactivate(self.active_adapter)

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


def is_adapter_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a peft adapter (its adapter_config.json)."""
    return (Path(path) / "adapter_config.json").is_file()


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


def _strip_lora_layers(model) -> None:
    """Put back the original layer wherever peft wrapped one (a first adapter load that failed half-way)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.get_base_layer())
    if "peft_config" in vars(model):  # peft notes its config on the model it wraps
        del model.peft_config


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
