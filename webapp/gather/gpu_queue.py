"""Gather on the `gpu` queue: a round goes to gpu_worker as batches; its last reply sends the next round or ends the run.

The web side keeps no process waiting: ``gpu_queue_start`` sends a round and returns, and
``gpu_queue_reply`` (the ``gather_batch_done`` task) stores one batch's answers. The batches of
the round still out are listed in ``run.counts["gpu_queue"]`` and changed only under the run's row
lock, so a reply that arrives twice (gpu_worker acknowledges late) or belongs to a superseded
sending (the run was resumed) finds its batch gone from the list and changes nothing.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from itertools import groupby

from django.db import transaction
from django.db.models import F

from pipeline.gather import GatherConfig, WorkItem, pending_round_work
from pipeline.guidance import guidance_kind_for_round, problems_needing_guidance
from pipeline.models import ChatRequest, ChatResult
from pipeline.models.answers import merge_params
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.celery import app as web_celery_app
from webapp.gather.models import Attempt
from webapp.gather.services import GatherContext, _attempt_rows, _context, _done, _report, _requests
from webapp.runs.models import Run, RunEvent, RunStatus
from webapp.runs.services import run_add_usage, run_finish, run_log, run_should_stop

logger = logging.getLogger(__name__)

GENERATE_TASK = "gpu_worker.generate_batch"
REPLY_TASK = "webapp.gather.tasks.gather_batch_done"
BATCH_SIZE = 16  # conversations per batch: enough to fill an engine's batch, few enough to lose little to a crash
GPU_PARAMS = ("max_tokens", "temperature", "top_p", "stop", "seed")  # what generate_batch's params accept, less n
STATE = "gpu_queue"  # key of run.counts: {"round", "out": batch ids still out, "failed": requests, "error": last reason}

Batch = list[tuple[WorkItem, ChatRequest]]


def gpu_queue_refusal(config: GatherConfig, student: ModelEndpoint) -> str | None:
    """Why a run cannot go to the gpu queue with this student (None when it can): checked at launch."""
    if student.kind != EndpointKind.LOCAL or not student.base_weights:
        return (f"execution gpu_queue sends batches to a gpu_worker, which loads the weights of a local model; "
                f"{student.name} is not a local model with base weights. Use execution http for it.")
    if "state_reset" in config.guidance.kinds:
        return ("state_reset guidance needs the model to continue the gold rationale's prefix inside its own turn, "
                "which gpu_worker batches do not do; use execution http (Errata's model server) for state_reset.")
    return None


# --- Sending ----------------------------------------------------------------------------------


def gpu_queue_start(context: GatherContext) -> None:
    """Send the first round that has work missing (everything on a new run, only the gaps on a resumed one)."""
    _report(context)
    _advance(context, {"round": -1, "out": [], "failed": 0, "error": ""})  # round -1: the one before the plain pass


def _advance(context: GatherContext, state: dict) -> None:
    """After ``state["round"]`` is all back: stop if asked to, send the next round with work, or finish."""
    run_id = context.run.pk
    if run_should_stop(run_id=run_id):
        run_log(run_id=run_id, message="Cancelled; answers recorded so far are kept.")
        run_finish(run_id=run_id, status=RunStatus.CANCELLED)
        return
    next_round = _next_round(context, first=state["round"] + 1)
    if next_round is None:
        _finish(context, state)
        return
    round_number, batches = next_round
    _send(context, {**state, "round": round_number}, batches)


def _next_round(context: GatherContext, first: int) -> tuple[int, list[Batch]] | None:
    """The first round from ``first`` with requests to make, as batches; None when no round has any."""
    for round_number in range(first, context.config.guidance.max_resample + 1):
        work = _round_work(context, round_number)
        if work is None:
            return None
        kept, requests = _requests(context, work)
        if kept:
            return round_number, _batches(list(zip(kept, requests)))
    return None


def _round_work(context: GatherContext, round_number: int) -> list[WorkItem] | None:
    """The round's missing samples (as in ``_answer_all_rounds``); None when no problem needs guiding any more."""
    config, done = context.config, _done(context.run.pk)
    if round_number == 0:
        return pending_round_work(context.problems, round=0, samples=config.samples_per_problem, done=done)
    attempts = [a.as_record() for a in Attempt.objects.filter(run=context.run).select_related("problem")]
    needing = set(problems_needing_guidance(attempts, config.guidance))
    ids = [pk for pk, problem in context.problems.items() if problem.external_id in needing]
    if not ids:
        return None
    kind = guidance_kind_for_round(config.guidance, round_number)
    work = pending_round_work(ids, round=round_number, samples=config.guidance.samples_per_round, done=done,
                              guidance=kind)
    Run.objects.filter(pk=context.run.pk).update(
        progress_total=F("progress_total") + sum(len(item.sample_indexes) for item in work))
    run_log(run_id=context.run.pk, message=f"Round {round_number} ({kind}): {len(ids)} problems need guidance.")
    return work


def _batches(pairs: Batch) -> list[Batch]:
    """Up to BATCH_SIZE requests each; one batch asks every conversation for the same number of samples (its n)."""
    pairs = sorted(pairs, key=lambda pair: pair[1].n)
    batches = []
    for _, same_n in groupby(pairs, key=lambda pair: pair[1].n):
        same_n = list(same_n)
        batches.extend(same_n[start:start + BATCH_SIZE] for start in range(0, len(same_n), BATCH_SIZE))
    return batches


def _send(context: GatherContext, state: dict, batches: list[Batch]) -> None:
    """Record the round's batches as out, then (once that is committed, so no reply can overtake it) send them."""
    sending = uuid.uuid4().hex[:8]  # batch ids of a resumed run differ from those it sent before
    ids = [f"{sending}:{state['round']}:{index}" for index in range(len(batches))]
    specs = [_spec(context, batch_id, batch) for batch_id, batch in zip(ids, batches)]
    with transaction.atomic():
        Run.objects.select_for_update().filter(pk=context.run.pk).first()
        _save_state(context.run.pk, {**state, "out": ids})
        transaction.on_commit(lambda: _send_specs(specs))
    requests = sum(len(batch) for batch in batches)
    run_log(run_id=context.run.pk, message=f"Round {state['round']}: {requests} requests sent to the gpu queue "
                                           f"in {len(batches)} batches.")


def _send_specs(specs: list[dict]) -> None:
    for spec in specs:
        web_celery_app.send_task(GENERATE_TASK, args=[spec], queue="gpu")


def _spec(context: GatherContext, batch_id: str, batch: Batch) -> dict:
    """A generate_batch spec; the reply's context says which (problem, round, samples) each output row answers."""
    model, adapter = model_spec(context.student)
    first = batch[0][1]
    params = {k: v for k, v in merge_params(context.student.default_params, first.params).items() if k in GPU_PARAMS}
    items = [[item.problem_id, item.round, list(item.sample_indexes), item.guidance] for item, _ in batch]
    reply_context = {"run_id": context.run.pk, "batch": batch_id, "items": items,
                     "prompts": [json.dumps(list(request.messages), ensure_ascii=False) for _, request in batch]}
    spec = {"model": model, "messages": [list(request.messages) for _, request in batch],
            "params": {**params, "n": first.n},
            "reply_to": {"task": REPLY_TASK, "queue": "default", "context": reply_context}}
    return {**spec, "adapter": adapter} if adapter else spec


def model_spec(endpoint: ModelEndpoint) -> tuple[dict, str | None]:
    """What gpu_worker loads for a local endpoint, and the adapter to answer through when model_name names one."""
    adapters = dict(endpoint.adapters or {})
    adapter = endpoint.model_name if endpoint.model_name in adapters else None
    model = {"name": f"{endpoint.name} base" if adapter else endpoint.model_name, "path": endpoint.base_weights,
             "adapters": adapters}
    if endpoint.gguf_file:
        model["gguf_file"] = endpoint.gguf_file
    return model, adapter


def _save_state(run_id: int, state: dict) -> None:
    """Keep the batch bookkeeping beside the tallies ``_report`` writes (the caller holds the run's row lock)."""
    counts = Run.objects.values_list("counts", flat=True).get(pk=run_id)
    Run.objects.filter(pk=run_id).update(counts={**counts, STATE: state})


# --- Replies ----------------------------------------------------------------------------------


def gpu_queue_reply(*, result: dict, reply_context: dict) -> None:
    """Store one batch's answers once; the round's last reply sends the next round or finishes the run."""
    run_id = reply_context["run_id"]
    try:
        with transaction.atomic():
            context, state = _take_reply(run_id, result, reply_context)
        if context is not None and not state["out"] and context.run.status == RunStatus.RUNNING:
            _advance(context, state)
    except Exception as error:  # noqa: BLE001 - as in gather_execute: the run ends with its reason; Resume re-sends
        logger.exception("gather run %s: a gpu batch reply failed", run_id)
        run_finish(run_id=run_id, status=RunStatus.FAILED, error=f"{type(error).__name__}: {error}")


def _take_reply(run_id: int, result: dict, reply_context: dict) -> tuple[GatherContext | None, dict]:
    """Under the run's row lock: record the reply if its batch is still out; (None, {}) for a duplicate or stale one."""
    run = Run.objects.select_for_update().filter(pk=run_id).first()
    state = (run.counts or {}).get(STATE) if run is not None else None
    if not state or reply_context["batch"] not in state["out"]:
        logger.info("gather run %s: batch %s already recorded or sent again; reply ignored", run_id, reply_context["batch"])
        return None, {}
    context = _context(run)
    failed, error = _store_reply(context, result, reply_context)
    state = {**state, "out": [b for b in state["out"] if b != reply_context["batch"]],
             "failed": state["failed"] + failed, "error": error or state["error"]}
    _report(context)
    _save_state(run_id, state)
    return context, state


def _store_reply(context: GatherContext, result: dict, reply_context: dict) -> tuple[int, str]:
    """Write the batch's attempts and usage; returns (requests that failed, why)."""
    items = [WorkItem(problem_id, round_number, tuple(samples), guidance)
             for problem_id, round_number, samples, guidance in reply_context["items"]]
    outputs = result.get("outputs")
    error = result.get("error") or "no answer"
    if outputs is not None and len(outputs) != len(items):
        outputs, error = None, f"the gpu worker answered {len(outputs)} of {len(items)} requests"
    if outputs is None:
        run_log(run_id=context.run.pk, level=RunEvent.Level.WARNING,
                message=f"gpu batch {reply_context['batch']} ({len(items)} requests) failed: {error}")
        run_add_usage(run_id=context.run.pk, requests=len(items), failed=len(items))
        return len(items), error
    rows = []
    for item, prompt, row in zip(items, reply_context["prompts"], outputs):
        rows.extend(_attempt_rows(context, item, ChatRequest(messages=json.loads(prompt), n=len(row)),
                                  _chat_result(row, result.get("seconds") or 0.0)))
    Attempt.objects.bulk_create(rows, ignore_conflicts=True)
    run_add_usage(run_id=context.run.pk, requests=len(items),
                  prompt_tokens=sum(row[0]["prompt_tokens"] for row in outputs if row),
                  completion_tokens=sum(out["completion_tokens"] for row in outputs for out in row))
    return 0, ""


def _chat_result(row: Sequence[dict], seconds: float) -> ChatResult:
    """One output row as the model client's result type, so attempts are written exactly as on the HTTP path."""
    return ChatResult(key="", texts=[out["text"] for out in row], finish_reasons=[out["finish_reason"] for out in row],
                      prompt_tokens=row[0]["prompt_tokens"] if row else 0,
                      completion_tokens=sum(out["completion_tokens"] for out in row), cost=0.0, latency_s=seconds,
                      cached=False, attempts=1, error=None)


def _finish(context: GatherContext, state: dict) -> None:
    if state["failed"]:
        run_finish(run_id=context.run.pk, status=RunStatus.FAILED, error=(
            f"{state['failed']} requests failed and were not recorded (last reason: {state['error']}). "
            "Resume the run to ask for them again; the answers already recorded are kept."))
    else:
        run_finish(run_id=context.run.pk, status=RunStatus.SUCCEEDED)
