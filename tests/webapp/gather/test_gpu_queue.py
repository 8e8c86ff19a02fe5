"""Gather on the gpu queue: a real gpu_worker end to end, then the replies' bookkeeping (duplicates, failures, GSI, cancel)."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.scoring import score
from tests.conftest import start_celery_worker, start_gpu_worker, stop_process, wait_for
from tests.webapp.gather.conftest import known_dataset
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.gather.gpu_queue import model_spec
from webapp.gather.models import Attempt
from webapp.gather.services import GatherLaunchError, gather_execute, gather_launch
from webapp.gather.tasks import gather_batch_done
from webapp.runs.models import Run, RunStatus
from webapp.runs.services import run_cancel, run_requeue

pytestmark = pytest.mark.django_db(transaction=True)  # replies and batches are sent on commit, as in production


def local_student(base_weights: str = "/models/not-read-by-the-web-side", **fields) -> ModelEndpoint:
    return ModelEndpoint.objects.create(name="local student", kind=EndpointKind.LOCAL, base_url="http://127.0.0.1:9/v1",
                                        model_name="tiny", base_weights=base_weights, **fields)


def config(dataset, student, **changes) -> dict:
    return {"dataset_id": dataset.pk, "student_endpoint_id": student.pk, "execution": "gpu_queue", **changes}


@pytest.fixture
def sent(monkeypatch):
    """What goes to the broker, as (task name, args); the Celery edge is the end of the world for these tests."""
    messages = []
    monkeypatch.setattr("celery.app.base.Celery.send_task",
                        lambda app, name, args=None, queue=None, **options: messages.append((name, args)))
    return messages


def batches(sent) -> list[dict]:
    """The generate_batch specs sent so far, each once."""
    return [args[0] for name, args in sent if name == "gpu_worker.generate_batch"]


def reply(spec: dict, answer) -> tuple[dict, dict]:
    """gpu_worker's reply to ``spec``: ``answer(problem_id, round)`` gives each output's text."""
    context = spec["reply_to"]["context"]
    outputs = [[{"text": answer(problem_id, round_number), "finish_reason": "stop", "prompt_tokens": 10,
                 "completion_tokens": 3} for _ in samples] for problem_id, round_number, samples, _ in context["items"]]
    return {"outputs": outputs, "model": "tiny", "seconds": 0.5}, context


def right_on(*external_ids: str):
    """An answer function that gives the gold answer on these problems and a wrong number elsewhere."""
    from webapp.datasets.models import Problem

    gold = {p.pk: (p.external_id, p.gold_answer) for p in Problem.objects.all()}

    def answer(problem_id: int, round_number: int) -> str:
        external_id, answer = gold[problem_id]
        return f"The answer is {answer if external_id in external_ids else 987654}."

    return answer


def launch(user, data, sent) -> Run:
    run = gather_launch(user=user, data=data)
    assert [name for name, _ in sent] == ["webapp.gather.tasks.gather_run"]
    gather_execute(run_id=run.pk)  # what the default-queue worker does with that message
    run.refresh_from_db()
    return run


# --- The real path: a web worker and a gpu worker on the local broker ---------------------------


@pytest.mark.slow
def test_a_gpu_queue_run_goes_through_a_real_gpu_worker_and_back(researcher, tmp_path):
    from tests.gpu_worker.tiny import build_tiny_model

    student = local_student(str(build_tiny_model(tmp_path / "tiny")))
    dataset = known_dataset(6)
    web, gpu = start_celery_worker(tmp_path / "web.log"), start_gpu_worker(tmp_path / "gpu.log")
    try:
        run = gather_launch(user=researcher, data=config(dataset, student, samples_per_problem=2,
                                                         decoding={"max_tokens": 8}))
        wait_for(lambda: Run.objects.get(pk=run.pk).is_finished or web.poll() is not None or gpu.poll() is not None,
                 timeout=120, what="the gpu queue run")
    finally:
        gpu.terminate()  # both shut down at once (each takes seconds)
        stop_process(web)
        stop_process(gpu)
    run.refresh_from_db()
    logs = (tmp_path / "web.log").read_text() + (tmp_path / "gpu.log").read_text()
    assert run.status == RunStatus.SUCCEEDED, run.error or logs
    attempts = list(Attempt.objects.filter(run=run).select_related("problem"))
    assert len(attempts) == 12
    assert Counter((a.problem_id, a.sample_index, a.round) for a in attempts).most_common(1)[0][1] == 1
    assert all(score(dataset.scorer, a.raw_output, a.problem.gold_answer).correct == a.correct for a in attempts)
    right = sum(a.correct for a in attempts)
    assert (run.counts["correct"], run.counts["wrong"]) == (right, 12 - right)
    assert run.progress_done == run.progress_total == 12 and run.counts["gpu_queue"]["out"] == []
    assert run.requests == 6 and run.failed_requests == 0 and run.completion_tokens > 0
    assert {a.model_name for a in attempts} == {"tiny"}


# --- Replies, directly ------------------------------------------------------------------------


def test_a_duplicate_reply_is_recorded_once(researcher, sent):
    run = launch(researcher, config(known_dataset(4), local_student(), samples_per_problem=2), sent)
    [spec] = batches(sent)
    assert spec["params"]["n"] == 2 and len(spec["messages"]) == 4
    assert spec["model"] == {"name": "tiny", "path": "/models/not-read-by-the-web-side", "adapters": {}}
    result, context = reply(spec, right_on("k0", "k2"))
    gather_batch_done(result, context)
    gather_batch_done(result, context)  # acks_late: gpu_worker may send the same reply again
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert Attempt.objects.filter(run=run).count() == 8 and run.progress_done == 8
    assert (run.requests, run.prompt_tokens, run.completion_tokens) == (4, 40, 24)
    assert (run.counts["correct"], run.counts["wrong"]) == (4, 4)


def test_a_failed_batch_fails_the_run_after_the_last_reply_and_resume_sends_only_it(researcher, sent):
    run = launch(researcher, config(known_dataset(20), local_student()), sent)
    first, second = batches(sent)
    assert [len(spec["messages"]) for spec in (first, second)] == [16, 4]
    gather_batch_done({"outputs": None, "model": "tiny", "seconds": 1.0, "error": "RuntimeError: CUDA out of memory"},
                      second["reply_to"]["context"])
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING  # the first batch is still out
    gather_batch_done(*reply(first, right_on()))
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "4 requests failed" in run.error and "CUDA out of memory" in run.error and "Resume" in run.error
    assert (run.requests, run.failed_requests, Attempt.objects.filter(run=run).count()) == (20, 4, 16)
    assert run.events.filter(level="warning", message__contains="CUDA out of memory").exists()

    sent.clear()
    run_requeue(run=run)
    gather_execute(run_id=run.pk)
    [again] = batches(sent)
    assert again["reply_to"]["context"]["items"] == second["reply_to"]["context"]["items"]
    gather_batch_done(*reply(first, right_on()))  # a late copy of a reply from before the resume changes nothing
    assert Run.objects.get(pk=run.pk).requests == 20
    gather_batch_done(*reply(again, right_on()))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and Attempt.objects.filter(run=run).count() == 20


def test_gsi_rounds_are_sent_when_a_round_is_all_back(researcher, sent):
    gsi = {"min_correct": 1, "max_resample": 2, "kinds": ["answer", "rationale"]}
    run = launch(researcher, config(known_dataset(4), local_student(), samples_per_problem=2, guidance=gsi), sent)
    [plain] = batches(sent)
    gather_batch_done(*reply(plain, right_on("k0", "k1")))
    gather_batch_done(*reply(plain, right_on("k0", "k1")))  # a duplicate does not send the round twice
    [_, answer_round] = batches(sent)
    items = answer_round["reply_to"]["context"]["items"]
    problems = dict(Attempt.objects.filter(run=run).values_list("problem__external_id", "problem_id").distinct())
    assert items == [[problems["k2"], 1, [0], "answer"], [problems["k3"], 1, [0], "answer"]]
    assert answer_round["params"]["n"] == 1 and "answer" in answer_round["messages"][0][-1]["content"].lower()

    gather_batch_done(*reply(answer_round, right_on()))
    [_, _, rationale_round] = batches(sent)
    assert [item[1:] for item in rationale_round["reply_to"]["context"]["items"]] == [[2, [0], "rationale"]] * 2
    gather_batch_done(*reply(rationale_round, right_on("k2")))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert len(batches(sent)) == 3  # max_resample reached: no third guided round
    rounds = Counter(Attempt.objects.filter(run=run).values_list("round", "guidance"))
    assert rounds == {(0, ""): 8, (1, "answer"): 2, (2, "rationale"): 2}
    assert run.progress_done == run.progress_total == 12


def test_a_cancelled_run_ends_when_its_batches_are_back_and_sends_no_more(researcher, sent):
    gsi = {"min_correct": 1, "max_resample": 1, "kinds": ["answer"]}
    run = launch(researcher, config(known_dataset(20), local_student(), guidance=gsi), sent)
    first, second = batches(sent)
    run_cancel(run=run)
    gather_batch_done(*reply(first, right_on()))
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING
    gather_batch_done(*reply(second, right_on()))
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and len(batches(sent)) == 2
    assert Attempt.objects.filter(run=run).count() == 20  # answers already generated are kept


# --- Launch checks and the model spec ---------------------------------------------------------


def test_launch_refuses_the_gpu_queue_for_a_remote_endpoint(researcher):
    remote = ModelEndpoint.objects.create(name="remote", base_url="http://127.0.0.1:9/v1", model_name="gpt")
    with pytest.raises(GatherLaunchError, match="gpu_queue .* local model"):
        gather_launch(user=researcher, data=config(known_dataset(2), remote))
    assert Run.objects.count() == 0


def test_launch_refuses_state_reset_on_the_gpu_queue(researcher):
    gsi = {"min_correct": 1, "max_resample": 1, "kinds": ["state_reset"], "state_reset_lines": 1}
    with pytest.raises(GatherLaunchError, match="state_reset .* execution http"):
        gather_launch(user=researcher, data=config(known_dataset(2), local_student(), guidance=gsi))


def test_a_model_name_that_names_an_adapter_answers_through_it():
    student = local_student("/models/base", adapters={"tutor": "/models/tutor"}, gguf_file="base.gguf")
    student.model_name = "tutor"
    assert model_spec(student) == ({"name": "local student base", "path": "/models/base", "gguf_file": "base.gguf",
                                    "adapters": {"tutor": "/models/tutor"}}, "tutor")


def test_gpu_worker_loads_packaged_smollm2_from_its_converted_folder(monkeypatch, tmp_path):
    from gpu_worker import smollm2
    from gpu_worker.tasks import parse_model

    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setattr(smollm2, "smollm2_folder", lambda: tmp_path)  # conversion itself: tests/gpu_worker/test_smollm2.py
    assert parse_model({"name": "smollm2", "path": "packaged:smollm2"})["path"] == str(tmp_path)
