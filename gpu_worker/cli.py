"""`python -m gpu_worker serve`: serve models over the OpenAI API with vLLM on a GPU, or Errata's CPU server."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gpu_worker.announce import (
    ANNOUNCE_INTERVAL_ENV,
    ANNOUNCE_URL_ENV,
    AnnounceConfigError,
    Announcer,
    announce_settings,
    local_models_url,
)
from gpu_worker.announce import logger as announce_logger
from gpu_worker.vllm import (
    LORA_RANKS,
    RUNTIME_MAX_LORAS,
    VLLMConfigError,
    check_adapter,
    check_name,
    vllm_available,
    vllm_serve_command,
)

if TYPE_CHECKING:
    from gpu_worker.engine import ModelSpec

SMOLLM2_DEFAULT_NAME = "smollm2"
API_KEY_ENV = "ERRATA_MODEL_SERVER_KEY"


class ServeConfigError(ValueError):
    """A bad `serve` argument, found before any model is loaded."""


@dataclass
class PlannedModel:
    """One base model as the command line names it, before anything is loaded."""

    name: str
    path: Path | None  # None: the packaged SmolLM2, converted only once every argument checks out
    gguf_file: str | None = None
    adapters: dict[str, str] = field(default_factory=dict)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gpu_worker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve models over the OpenAI-compatible HTTP API")
    serve.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                       help="a base model: an HF folder, or a .gguf file (repeatable)")
    serve.add_argument("--gguf-file", metavar="FILE",
                       help="the GGUF file inside the folder of the only --model")
    serve.add_argument("--adapter", action="append", default=[], metavar="BASE_NAME:ADAPTER_NAME=PATH",
                       help="a LoRA adapter folder on a base model, served as ADAPTER_NAME (repeatable)")
    serve.add_argument("--smollm2", nargs="?", const=SMOLLM2_DEFAULT_NAME, metavar="NAME",
                       help=f"also serve the packaged SmolLM2-135M-Instruct (name: {SMOLLM2_DEFAULT_NAME})")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    serve.add_argument("--max-batch-size", type=int, default=8, help="CPU server: requests decoded together")
    serve.add_argument("--num-threads", type=int, default=None, help="CPU server: torch threads (default: torch's)")
    serve.add_argument("--backend", choices=["auto", "cpu", "vllm"], default="auto",
                       help="auto: vLLM when it and a CUDA GPU are present, else Errata's CPU server")
    serve.add_argument("--tensor-parallel-size", type=int, default=1, help="vLLM: GPUs per model")
    serve.add_argument("--gpu-memory-utilization", type=float, default=0.9,
                       help="vLLM: fraction of GPU memory to take, in (0, 1]")
    serve.add_argument("--max-lora-rank", type=int, default=64, choices=LORA_RANKS,
                       help="vLLM: largest adapter rank, including adapters loaded later")
    serve.add_argument("--max-model-len", type=int, default=None, help="vLLM: context length (default: the model's)")
    serve.add_argument("--runtime-lora", action=argparse.BooleanOptionalAction, default=True,
                       help="vLLM: accept /v1/load_lora_adapter and /v1/unload_lora_adapter (the CPU server always does)")
    serve.add_argument("--max-loras", type=int, default=None,
                       help=f"vLLM: adapters one batch may mix (default: {RUNTIME_MAX_LORAS} with --runtime-lora)")
    serve.add_argument("--api-key-env", default=API_KEY_ENV, metavar="NAME",
                       help=f"environment variable whose value, when set, every /v1 request must send as a "
                            f"Bearer token (default: {API_KEY_ENV})")
    serve.add_argument("--announce-url", metavar="URL",
                       help=f"announce the served models to Errata's web side (a Celery message on its broker) as "
                            f"reachable at this public base URL, e.g. http://gpu-1:8001/v1 (default: ${ANNOUNCE_URL_ENV})")
    serve.add_argument("--announce-interval", type=float, metavar="SECONDS",
                       help=f"heartbeat: announce again every SECONDS (default: ${ANNOUNCE_INTERVAL_ENV}, else 60)")
    return parser


def split_model_arg(text: str) -> tuple[str, str]:
    """``NAME=PATH`` -> (name, path); the path may itself hold '='."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise ServeConfigError(f"--model {text!r}: expected NAME=PATH, e.g. --model student=/models/llama")
    return name, path


def split_adapter_arg(text: str) -> tuple[str, str, str]:
    """``BASE_NAME:ADAPTER_NAME=PATH`` -> (base name, adapter name, path)."""
    names, sep, path = text.partition("=")
    base, colon, adapter = names.partition(":")
    if not sep or not colon or not base or not adapter or not path:
        raise ServeConfigError(
            f"--adapter {text!r}: expected BASE_NAME:ADAPTER_NAME=PATH, e.g. --adapter student:tutor=/adapters/tutor"
        )
    return base, adapter, path


def plan_models(args: argparse.Namespace) -> list[PlannedModel]:
    """Every model and adapter the arguments name, each checked (names, paths, duplicates); nothing loaded."""
    models = [_planned_from_arg(text) for text in args.model]
    if args.gguf_file:
        if len(models) != 1:
            raise ServeConfigError("--gguf-file goes with exactly one --model; with several, give each .gguf path in --model")
        models[0].gguf_file = args.gguf_file
    if args.smollm2:
        models.append(PlannedModel(name=args.smollm2, path=None))
    if not models:
        raise ServeConfigError("nothing to serve: give --model NAME=PATH and/or --smollm2")
    for model in models:
        _check_model(model)
    for text in args.adapter:
        _add_adapter(models, *split_adapter_arg(text), max_lora_rank=args.max_lora_rank)
    _check_unique_names(models)
    return models


def _planned_from_arg(text: str) -> PlannedModel:
    name, raw_path = split_model_arg(text)
    path = Path(raw_path).expanduser()
    if path.suffix == ".gguf":
        return PlannedModel(name=name, path=path.parent, gguf_file=path.name)
    return PlannedModel(name=name, path=path)


def _check_model(model: PlannedModel) -> None:
    _checked_name(model.name, "model name")
    if model.path is None:
        return
    if not model.path.is_dir():
        raise ServeConfigError(f"model {model.name!r}: folder {model.path} does not exist")
    if model.gguf_file:
        if not (model.path / model.gguf_file).is_file():
            raise ServeConfigError(f"model {model.name!r}: GGUF file {model.path / model.gguf_file} does not exist")
    elif not (model.path / "config.json").is_file():
        raise ServeConfigError(f"model {model.name!r}: {model.path} has no config.json (not a Hugging Face model folder)")


def _add_adapter(models: list[PlannedModel], base: str, adapter: str, path: str, *, max_lora_rank: int) -> None:
    owner = next((model for model in models if model.name == base), None)
    if owner is None:
        known = ", ".join(model.name for model in models)
        raise ServeConfigError(f"adapter {adapter!r} is for base model {base!r}, which is not served (served: {known})")
    if adapter in owner.adapters:
        raise ServeConfigError(f"adapter name {adapter!r} is given twice for model {base!r}")
    try:
        check_adapter(adapter, Path(path).expanduser(), max_lora_rank)
    except VLLMConfigError as error:
        raise ServeConfigError(str(error)) from None
    owner.adapters[adapter] = str(Path(path).expanduser().resolve())


def _check_unique_names(models: list[PlannedModel]) -> None:
    """Clients choose a model or an adapter by name: every served name must be unique."""
    seen: set[str] = set()
    for name in [name for model in models for name in (model.name, *model.adapters)]:
        if name in seen:
            raise ServeConfigError(f"the name {name!r} is used twice; every model and adapter needs its own name")
        seen.add(name)


def _checked_name(name: str, what: str) -> str:
    try:
        return check_name(name, what)
    except VLLMConfigError as error:
        raise ServeConfigError(str(error)) from None


def resolve_specs(models: Sequence[PlannedModel]) -> list[ModelSpec]:
    """ModelSpecs for the engine; converts the packaged SmolLM2 (once, cached) when it was asked for."""
    from gpu_worker.engine import ModelSpec

    specs = []
    for model in models:
        path = model.path
        if path is None:
            from gpu_worker.smollm2 import smollm2_folder

            path = smollm2_folder()
        specs.append(ModelSpec(name=model.name, path=str(path.resolve()), gguf_file=model.gguf_file,
                               adapters=dict(model.adapters)))
    return specs


def choose_backend(requested: str, *, available: bool) -> str:
    """``auto`` -> vLLM where it can run, else the CPU server; an explicit ``vllm`` must be able to run."""
    if requested == "vllm" and not available:
        raise ServeConfigError("--backend vllm needs vLLM installed (requirements-gpu.txt) and a CUDA GPU")
    if requested == "auto":
        return "vllm" if available else "cpu"
    return requested


def vllm_command_for(spec: ModelSpec, args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The `vllm serve` argv for one base model (vLLM serves one base model per process), and the
    environment variables it needs on top of ours."""
    model_path = Path(spec.path) / spec.gguf_file if spec.gguf_file else Path(spec.path)
    try:
        return vllm_serve_command(
            model_path=model_path, served_name=spec.name, host=args.host, port=args.port,
            tensor_parallel_size=args.tensor_parallel_size, lora_modules=spec.adapters,
            max_lora_rank=args.max_lora_rank, gpu_memory_utilization=args.gpu_memory_utilization,
            max_model_len=args.max_model_len, runtime_lora=args.runtime_lora, max_loras=args.max_loras,
            api_key=api_key(args),
        )
    except VLLMConfigError as error:
        raise ServeConfigError(str(error)) from None


def vllm_argv_for(spec: ModelSpec, args: argparse.Namespace) -> list[str]:
    """The argv alone of ``vllm_command_for``."""
    return vllm_command_for(spec, args)[0]


def api_key(args: argparse.Namespace) -> str | None:
    """The key clients must send, read from the environment variable ``--api-key-env`` names (None: no key)."""
    return os.environ.get(args.api_key_env) or None


def check_numbers(args: argparse.Namespace) -> None:
    if not 0 < args.port < 65536:
        raise ServeConfigError(f"--port must be between 1 and 65535, not {args.port}")
    if args.max_batch_size < 1:
        raise ServeConfigError(f"--max-batch-size must be at least 1, not {args.max_batch_size}")
    if args.num_threads is not None and args.num_threads < 1:
        raise ServeConfigError(f"--num-threads must be at least 1, not {args.num_threads}")
    if args.tensor_parallel_size < 1:
        raise ServeConfigError(f"--tensor-parallel-size must be at least 1, not {args.tensor_parallel_size}")
    if not 0 < args.gpu_memory_utilization <= 1:
        raise ServeConfigError(f"--gpu-memory-utilization is a fraction in (0, 1], not {args.gpu_memory_utilization}")
    if args.max_loras is not None and args.max_loras < 1:
        raise ServeConfigError(f"--max-loras must be at least 1, not {args.max_loras}")


def run_forwarding_signals(argv: Sequence[str], env: dict[str, str] | None = None) -> int:
    """Run ``argv`` (a list, never a shell string) and pass SIGINT, SIGTERM and SIGHUP on to it.

    ``env``: variables added to ours for the child. The child gets its own session, so a Ctrl-C in
    the terminal reaches it once (through us), not twice.
    """
    process = subprocess.Popen(list(argv), start_new_session=True, env={**os.environ, **env} if env else None)

    def forward(signum, _frame):
        if process.poll() is None:
            process.send_signal(signum)

    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in forwarded}
    try:
        return process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def vllm_executable() -> str:
    """The `vllm` console script beside this interpreter (a venv), else the one on PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("vllm", path=search)
    if not found:
        raise ServeConfigError("the `vllm` command is not installed (pip install -r requirements-gpu.txt)")
    return found


def checked_announce_settings(args: argparse.Namespace) -> tuple[str, float] | None:
    """(public base URL, heartbeat seconds) when this server announces itself, else None."""
    try:
        return announce_settings(args.announce_url, args.announce_interval)
    except AnnounceConfigError as error:
        raise ServeConfigError(str(error)) from None


def start_announcer(args: argparse.Namespace, specs: Sequence[ModelSpec], backend: str,
                    settings: tuple[str, float]) -> Announcer:
    """The heartbeat thread that tells the web side what this server serves (see gpu_worker/announce.py)."""
    if not announce_logger.handlers:  # uvicorn and vLLM configure only their own loggers
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        announce_logger.addHandler(handler)
        announce_logger.setLevel(logging.INFO)
    if not os.environ.get("REDIS_URL"):
        announce_logger.warning("announce: no REDIS_URL, so announcing through the local filesystem queue: "
                                "only a web side on this machine will hear it")
    base_url, interval_s = settings
    weights = {spec.name: str(Path(spec.path) / spec.gguf_file) if spec.gguf_file else spec.path for spec in specs}
    return Announcer(base_url=base_url, interval_s=interval_s, models_url=local_models_url(args.host, args.port),
                     api_key=api_key(args), api_key_env=args.api_key_env, backend=backend, weights=weights).start()


def serve(args: argparse.Namespace) -> int:
    check_numbers(args)
    announce = checked_announce_settings(args)
    models = plan_models(args)
    backend = choose_backend(args.backend, available=args.backend != "cpu" and vllm_available())
    if backend == "vllm" and len(models) > 1:
        names = ", ".join(model.name for model in models)
        raise ServeConfigError(f"vLLM serves one base model per process; start one `serve` per model ({names})")
    specs = resolve_specs(models)
    announcer = start_announcer(args, specs, backend, announce) if announce else None
    try:
        if backend == "vllm":
            argv, env = vllm_command_for(specs[0], args)
            return run_forwarding_signals([vllm_executable(), *argv[1:]], env)
        from gpu_worker.server import run_server

        run_server(specs, host=args.host, port=args.port, max_batch_size=args.max_batch_size,
                   num_threads=args.num_threads, api_key=api_key(args))
        return 0
    finally:
        if announcer is not None:
            announcer.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return serve(args)
    except ServeConfigError as error:
        parser.error(str(error))  # exits with status 2 and the usage line
    return 2
