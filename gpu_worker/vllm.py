"""vLLM on GPU machines: the `vllm serve` command line, and offline batch generation with LoRA adapters."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gpu_worker.engine import Generated, GenerationParams

# vLLM 0.33's choices, checked in vllm-project/vllm:
#   vllm/config/lora.py: MaxLoRARanks = Literal[1, 8, 16, 32, 64, 128, 256, 320, 512]
#   vllm/config/model.py ModelDType: "auto", "half", "float16", "bfloat16", "float", "float32"
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
# Served names travel in URLs, JSON and `name=path` pairs: no spaces, '=' or ','.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}")

# Loading adapters into a running `vllm serve`, checked in vllm-project/vllm:
#   vllm/entrypoints/serve/lora/api_router.py: POST /v1/load_lora_adapter {lora_name, lora_path} and
#     /v1/unload_lora_adapter {lora_name} exist only when envs.VLLM_ALLOW_RUNTIME_LORA_UPDATING is true
#     (vllm/envs.py reads "1" or "true", any case), and the LoRA engine only with --enable-lora;
#     success is a plain-text 200 "Success: LoRA adapter '<name>' added successfully."
#   vllm/entrypoints/openai/models/serving.py: a name already loaded -> 400 "...has already been loaded";
#     no adapter at the path -> 404 (LoRAAdapterNotFoundError); unloading an unknown name -> 404;
#     /v1/models lists each adapter with root = its path and parent = the base model.
#   vllm/entrypoints/openai/api_server.py: `args.api_key or envs.VLLM_API_KEY` guards the /v1 routes.
RUNTIME_LORA_ENV = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
RUNTIME_MAX_LORAS = 4  # adapters one batch may mix when they come at run time (GPU slots, LRU-swapped)


class VLLMConfigError(ValueError):
    """A `vllm serve` setting that vLLM would reject (or mis-read), said in plain words."""


@functools.cache
def vllm_available() -> bool:
    """vLLM is installed and importable, and torch sees a CUDA GPU (checked in that cheap-first order)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    if not torch.cuda.is_available():
        return False
    try:
        import vllm  # noqa: F401  (a broken install fails here, not in the middle of a job)
    except Exception:
        return False
    return True


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise VLLMConfigError(
            f"{what} {name!r} is not a usable model name: use letters, digits and . _ - : / @ + "
            "(no spaces, '=' or ','), at most 128 characters, starting with a letter or digit"
        )
    return name


def lora_rank(adapter_path: str | Path) -> int | None:
    """The rank ``r`` a PEFT adapter folder declares in adapter_config.json (None when it says nothing)."""
    try:
        config = json.loads((Path(adapter_path) / "adapter_config.json").read_text())
    except (OSError, ValueError):
        return None
    rank = config.get("r")
    return rank if isinstance(rank, int) else None


def check_adapter(name: str, path: str | Path, max_lora_rank: int) -> None:
    """An adapter vLLM can load: a folder with adapter_config.json whose rank fits under max_lora_rank."""
    check_name(name, "adapter name")
    folder = Path(path)
    if not folder.is_dir():
        raise VLLMConfigError(f"adapter {name!r}: folder {folder} does not exist")
    if not (folder / "adapter_config.json").is_file():
        raise VLLMConfigError(f"adapter {name!r}: {folder} has no adapter_config.json (is it a PEFT LoRA adapter?)")
    rank = lora_rank(folder)
    if rank is not None and rank > max_lora_rank:
        raise VLLMConfigError(f"adapter {name!r} has rank {rank}, above --max-lora-rank {max_lora_rank}")


def smallest_lora_rank(paths: Sequence[str | Path], default: int = 16) -> int:
    """The smallest rank vLLM accepts that fits every adapter (smaller ranks reserve less GPU memory)."""
    needed = max([lora_rank(path) or default for path in paths], default=default)
    for rank in LORA_RANKS:
        if rank >= needed:
            return rank
    raise VLLMConfigError(f"an adapter has rank {needed}; vLLM supports at most {LORA_RANKS[-1]}")


def lora_module_arg(name: str, path: str, base_model_name: str) -> str:
    """One --lora-modules value.

    vLLM's LoRAParserAction (vllm/entrypoints/openai/cli_args.py) reads ``name=path`` only when the
    item has an '=' and no ','; a path with '=' or ',' must go as JSON instead.
    """
    if "=" in path or "," in path:
        return json.dumps({"name": name, "path": path, "base_model_name": base_model_name})
    return f"{name}={path}"


def vllm_serve_argv(
    *,
    model_path: str | Path,
    served_name: str,
    host: str,
    port: int,
    tensor_parallel_size: int = 1,
    lora_modules: Mapping[str, str | Path] | None = None,
    max_lora_rank: int = 64,
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
    dtype: str = "auto",
    runtime_lora: bool = False,
    max_loras: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The argv of ``vllm serve`` for one base model and its LoRA adapters (pure; checks files exist).

    ``runtime_lora``: enable LoRA even without adapters now, with ``max_lora_rank`` as the largest rank
    an adapter loaded later may have, and ``max_loras`` (default ``RUNTIME_MAX_LORAS``) slots. The
    server also needs ``RUNTIME_LORA_ENV``: use ``vllm_serve_command`` to get both.

    Flags checked against vLLM's own parser: --served-model-name, --max-model-len, --dtype
    (ModelConfig), --tensor-parallel-size (ParallelConfig), --gpu-memory-utilization (CacheConfig),
    --enable-lora, --max-lora-rank, --max-loras (LoRAConfig) through vllm/engine/arg_utils.py;
    --host, --port, --lora-modules (FrontendArgs in vllm/entrypoints/openai/cli_args.py).
    """
    lora_modules = dict(lora_modules or {})
    check_name(served_name, "served model name")
    if not Path(model_path).exists():
        raise VLLMConfigError(f"model {served_name!r}: {model_path} does not exist")
    _check_numbers(port, tensor_parallel_size, gpu_memory_utilization, max_model_len, max_lora_rank, dtype)
    if max_loras is not None and (not isinstance(max_loras, int) or max_loras < 1):
        raise VLLMConfigError(f"max LoRAs must be a whole number of adapters >= 1, not {max_loras!r}")
    argv = [
        "vllm", "serve", str(model_path),
        "--served-model-name", served_name,
        "--host", host,
        "--port", str(port),
        "--tensor-parallel-size", str(tensor_parallel_size),
        "--gpu-memory-utilization", str(gpu_memory_utilization),
        "--dtype", dtype,
    ]
    if max_model_len is not None:
        argv += ["--max-model-len", str(max_model_len)]
    if lora_modules or runtime_lora:
        slots = max_loras or (RUNTIME_MAX_LORAS if runtime_lora else len(lora_modules))
        argv += _lora_flags(served_name, lora_modules, max_lora_rank, max(slots, len(lora_modules)))
    return argv + list(extra)


def vllm_serve_command(*, api_key: str | None = None, **settings) -> tuple[list[str], dict[str, str]]:
    """(argv, environment variables to add) for ``vllm serve``; ``settings`` are ``vllm_serve_argv``'s.

    With ``runtime_lora=True`` the variables switch on /v1/load_lora_adapter and /v1/unload_lora_adapter.
    ``api_key`` travels as VLLM_API_KEY, not as --api-key, so it never shows in a process list.
    """
    env = dict(RUNTIME_LORA_ENV) if settings.get("runtime_lora") else {}
    if api_key:
        env["VLLM_API_KEY"] = api_key
    return vllm_serve_argv(**settings), env


def _lora_flags(served_name: str, lora_modules: dict[str, str | Path], max_lora_rank: int, max_loras: int) -> list[str]:
    for name, path in lora_modules.items():
        check_adapter(name, path, max_lora_rank)
        if name == served_name:
            raise VLLMConfigError(f"adapter {name!r} has the same name as its base model")
    modules = [lora_module_arg(name, str(path), served_name) for name, path in lora_modules.items()]
    # --max-loras defaults to 1: without it, requests for different adapters would take turns.
    return ["--enable-lora", *(["--lora-modules", *modules] if modules else []),
            "--max-lora-rank", str(max_lora_rank), "--max-loras", str(max_loras)]


def _check_numbers(port, tensor_parallel_size, gpu_memory_utilization, max_model_len, max_lora_rank, dtype) -> None:
    if not isinstance(port, int) or not 0 < port < 65536:
        raise VLLMConfigError(f"port must be between 1 and 65535, not {port!r}")
    if not isinstance(tensor_parallel_size, int) or tensor_parallel_size < 1:
        raise VLLMConfigError(f"tensor parallel size must be a whole number of GPUs >= 1, not {tensor_parallel_size!r}")
    if not isinstance(gpu_memory_utilization, (int, float)) or not 0 < gpu_memory_utilization <= 1:
        raise VLLMConfigError(
            f"GPU memory utilization is a fraction in (0, 1], not {gpu_memory_utilization!r} (0.9 = 90%)"
        )
    if max_model_len is not None and (not isinstance(max_model_len, int) or max_model_len < 1):
        raise VLLMConfigError(f"max model length must be a positive number of tokens, not {max_model_len!r}")
    if max_lora_rank not in LORA_RANKS:
        raise VLLMConfigError(f"max LoRA rank must be one of {', '.join(map(str, LORA_RANKS))}, not {max_lora_rank!r}")
    if dtype not in DTYPES:
        raise VLLMConfigError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")


# --- Offline batch generation (GPU only) ----------------------------------------------------

_loaded: dict[str, Any] = {}  # one vLLM engine per process: it takes the GPU memory it is given
_lora_ids: dict[str, int] = {}  # vLLM caches adapters by id: one id per adapter folder, never reused


def load_offline_engine(
    model_path: str | Path,
    *,
    lora_rank: int | None = None,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
):
    """A vLLM ``LLM`` for this model, kept for the next batch; a different model replaces it."""
    key = json.dumps([str(model_path), lora_rank, tensor_parallel_size, gpu_memory_utilization])
    if key in _loaded:
        return _loaded[key]
    release_offline_engine()
    from vllm import LLM

    options: dict[str, Any] = {}
    if lora_rank is not None:
        options = {"enable_lora": True, "max_lora_rank": lora_rank, "max_loras": 1}
    llm = LLM(
        model=str(model_path),
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization,
        **options,
    )
    _loaded[key] = llm
    return llm


def release_offline_engine() -> None:
    """Drop the loaded vLLM engine and give its GPU memory back."""
    if not _loaded:
        return
    _loaded.clear()
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def vllm_offline_generate(
    model_path: str | Path,
    prompts: Sequence[str],
    params: GenerationParams,
    lora: tuple[str, str | Path] | None = None,
    *,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    adapter_folders: Sequence[str | Path] = (),
) -> list[list[Generated]]:
    """``params.n`` completions for each prompt with vLLM's offline engine, optionally through a LoRA adapter.

    ``lora`` is ``(adapter name, adapter folder)``. ``adapter_folders``: every adapter the model may be
    asked for, so one engine (with LoRA slots wide enough for all of them) serves them all and the base.
    Outputs come back in prompt order.
    """
    llm = _engine_for(model_path, lora, adapter_folders, tensor_parallel_size, gpu_memory_utilization)
    return _generate(llm, list(prompts), params, lora)


def vllm_offline_chat(
    model_path: str | Path,
    conversations: Sequence[Sequence[Mapping[str, str]]],
    params: GenerationParams,
    lora: tuple[str, str | Path] | None = None,
    *,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    adapter_folders: Sequence[str | Path] = (),
) -> list[list[Generated]]:
    """Like `vllm_offline_generate`, for conversations rendered with the model's own chat template."""
    llm = _engine_for(model_path, lora, adapter_folders, tensor_parallel_size, gpu_memory_utilization)
    tokenizer = llm.get_tokenizer()
    prompts = [
        tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        for messages in conversations
    ]
    return _generate(llm, prompts, params, lora)


def _engine_for(model_path, lora, adapter_folders, tensor_parallel_size: int, gpu_memory_utilization: float):
    folders = [*adapter_folders, *([lora[1]] if lora else [])]
    rank = smallest_lora_rank(folders) if folders else None
    return load_offline_engine(
        model_path, lora_rank=rank,
        tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
    )


def _generate(llm, prompts: list[str], params: GenerationParams, lora) -> list[list[Generated]]:
    from vllm import SamplingParams
    from vllm.lora.request import LoRARequest

    from gpu_worker.engine import Generated

    sampling = SamplingParams(
        n=params.n, temperature=params.temperature, top_p=params.top_p,
        max_tokens=params.max_tokens, stop=list(params.stop) or None, seed=params.seed,
        ignore_eos=getattr(params, "ignore_eos", False),
    )
    request = None
    if lora:
        adapter_id = _lora_ids.setdefault(str(Path(lora[1]).resolve()), len(_lora_ids) + 1)
        request = LoRARequest(lora[0], adapter_id, str(lora[1]))
    outputs = llm.generate(prompts, sampling, lora_request=request, use_tqdm=False)
    return [
        [
            Generated(
                text=completion.text,
                finish_reason=completion.finish_reason or "stop",
                prompt_tokens=len(output.prompt_token_ids or []),
                completion_tokens=len(completion.token_ids),
            )
            for completion in output.outputs
        ]
        for output in outputs
    ]
