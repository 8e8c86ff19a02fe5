"""The whole loop in a real browser, on `make run`'s embedded defaults: a researcher imports a dataset, lets the
student answer, asks a teacher about its mistakes, an annotator reviews the feedback from the keyboard, the
researcher trains a LoRA checkpoint, examines the student before and after, reads the comparison, and chats
with the new model. Every step goes through the pages; the test waits on what they show.

What runs: daphne, a default Celery worker, a gpu worker that trains, Errata's CPU model server serving the
student (and, after training, its adapter), and a fake OpenAI server standing in for the paid teacher.

Why the student is what it is. A tiny random model is fast but never answers right, so nothing it says could
be trained on; and what it learns from one prompt layout does not carry over to another (trained on LEMA's
correction prompts or on bare questions, it answered 0 of 24 in the exam's layout). So the student is a tiny
model taught in a few seconds only the *form* of an answer, "The answer is N." with N a random digit: it knows
what answers look like, not which one goes with which sum. Sampled 16 times per problem, it hits the right
digit on most problems (GSI's premise); the researcher trains on those right answers as they were asked
(a GSI iteration), and the exam, asked alike, shows what the model learnt. The teacher's LEMA corrections
are reviewed as a person would, but are not what the checkpoint trains on: their prompt is not the exam's.
"""

from __future__ import annotations

import json
import os
import random
import string
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.browser.test_import_flow import sign_in
from tests.browser.test_review_flow import shown_review, type_in_the_editor, wait_until_ready
from tests.conftest import PASSWORD, free_port, start_gpu_worker, stop_process, wait_for
from tests.fakeopenai import FakeOpenAI
from tests.webapp.exams.test_end_to_end import mcnemar_exact
from tests.webapp.loop import purge_queues, start_model_server
from webapp.chat.models import ChatMessage
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.exams.models import ExamAnswer
from webapp.gather.models import Attempt
from webapp.review.models import Decision, Review
from webapp.runs.models import Run, RunStatus
from webapp.teach.models import Feedback
from webapp.train.models import Checkpoint, TrainingSet

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROMPT = {"style": "zero_shot", "preset": "lema"}  # gather, training and both exams ask alike: short, no system turn
SAMPLES = 16  # per problem: P(no right digit in 16) = 0.9 ** 16, about one problem in five
NAMES = ("Ada Bruno Chen Dalia Emeka Farah Goran Hana Ivo Jun Kira Luis Mara Nils Omar Priya Quinn Rosa Sami Tomas Uma "
         "Vera Wen Xavi").split()
PROBLEMS = len(NAMES)
TRAIN_STEPS = 200
MINUTE = 60_000


def question(name: str, a: int, b: int) -> str:
    return f"In {name}'s game the score is {a}, and {name} scores {b} more. What is the score now?"


def problems() -> list[tuple[str, int, int]]:
    """One-digit sums, each about someone else: names with different first letters, easy for a byte-level model
    to tell apart."""
    pairs = [(a, b) for a in range(10) for b in range(10) if a + b <= 9]
    random.Random(0).shuffle(pairs)
    return [(name, a, b) for name, (a, b) in zip(NAMES, pairs)]


def write_gsm8k(path: Path) -> Path:
    """GSM8K's layout (question, worked answer ending "#### N"); a file called train.jsonl is the train split."""
    lines = [json.dumps({"question": question(name, a, b), "answer": f"{a} + {b} = {a + b}\n#### {a + b}"})
             for name, a, b in problems()]
    path.write_text("\n".join(lines) + "\n")
    return path


def lema_corrections() -> list[tuple[str, str]]:
    """The stand-in teacher's reply to each mistake, in LEMA's layout, keyed by the question it is asked about."""
    return [(f"{question(name, a, b)}\n", f"Incorrect Step: Step 1\nExplanation: The student guessed instead of "
                                         f"adding the {b} points {name} scored to the score of {a}.\n"
                                         f"Correct Solution:\n{a} + {b} = {a + b}\nThe answer is {a + b}")
            for name, a, b in problems()]


def build_guessing_student(folder: Path, steps: int = 100) -> Path:
    """A tiny model taught to answer any sum in the exam's layout with "The answer is N." for a random digit N."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gpu_worker.training.trainer import PaddingCollator
    from pipeline.benchmarks.records import ProblemRecord
    from pipeline.prompts import PromptConfig, student_messages
    from pipeline.training.tokens import tokenize_example
    from tests.gpu_worker.tiny import build_tiny_model

    build_tiny_model(folder)
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder)
    collate, draw, config = PaddingCollator(tokenizer.pad_token_id), random.Random(0), PromptConfig(**PROMPT)

    def example() -> dict:
        name = "".join(draw.choice(string.ascii_lowercase) for _ in range(draw.randint(3, 6))).capitalize()
        problem = ProblemRecord(external_id="x", gold_answer="",
                                question=question(name, draw.randint(0, 99), draw.randint(0, 99)))
        reply = {"role": "assistant", "content": f"The answer is {draw.randint(0, 9)}."}
        sequence = tokenize_example([*student_messages(problem, config), reply], tokenizer, 256)
        return {"input_ids": sequence.input_ids, "labels": sequence.labels}

    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    for _ in range(steps):
        model(**collate([example() for _ in range(16)])).loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    model.save_pretrained(folder)
    return folder


def snap(page, name: str, full_page: bool = True, height: int | None = None) -> None:
    """A screenshot for the docs, only when ERRATA_SCREENSHOTS names a folder; ``height`` cuts a long page."""
    folder = os.environ.get("ERRATA_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        clip = {"x": 0, "y": 0, "width": page.viewport_size["width"], "height": height} if height else None
        page.screenshot(path=str(Path(folder) / name), full_page=full_page or bool(height), clip=clip)


@pytest.fixture
def models(live_errata, tmp_path):
    """The student on Errata's model server, a gpu worker to train it, and a fake paid teacher; all stopped after."""
    student_dir = build_guessing_student(tmp_path / "student")
    purge_queues("gpu")
    port = free_port()
    server = start_model_server(student_dir, port, tmp_path / "server.log")
    gpu = start_gpu_worker(tmp_path / "gpu.log")
    teacher_server = FakeOpenAI(replies=lema_corrections()).start()
    try:
        student = ModelEndpoint.objects.create(
            name="Tiny demo student", kind=EndpointKind.LOCAL, base_url=f"http://127.0.0.1:{port}/v1",
            model_name="tiny", base_weights=str(student_dir), as_student=True, as_assistant=True, max_concurrency=4)
        teacher = ModelEndpoint.objects.create(
            name="Teacher (stand-in for a paid API)", base_url=teacher_server.base_url, model_name="fake-teacher",
            as_student=False, as_teacher=True, max_concurrency=16)
        yield SimpleNamespace(student=student, teacher=teacher)
    finally:
        teacher_server.stop()
        for process in (server, gpu):
            process.terminate()  # both at once: each takes seconds to stop
        for process in (server, gpu):
            stop_process(process)


def new_page(browser_page):
    """A page with cookies of its own, so two people can be signed in at once. It ignores the chat page's CSP,
    which would block Playwright's waits (they use eval)."""
    context = browser_page.context.browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page


def wait_for_run(page, timeout: int = 2 * MINUTE) -> Run:
    """On a run page: wait until htmx shows it finished; the run, which must have succeeded."""
    page.wait_for_selector("#run-status.succeeded, #run-status.failed, #run-status.cancelled", timeout=timeout)
    run = Run.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def import_dataset(page, path: Path) -> None:
    page.click("a:has-text('Import your first benchmark file')")
    page.set_input_files("input[name=files]", str(path))
    page.fill("input[name=dataset_name]", "Scores")
    page.click("button:has-text('Upload and import')")
    page.wait_for_selector("#import-status .status.succeeded", timeout=MINUTE)
    assert page.inner_text("#added") == str(PROBLEMS)
    snap(page, "02-import.png", full_page=False)


def gather(page) -> Run:
    """Runs → New gather run: the student answers every train problem 16 times, sampling."""
    page.click("nav >> text=Runs")
    page.click("a:has-text('New gather run')")
    page.select_option("select[name=style]", PROMPT["style"])
    page.select_option("select[name=preset]", PROMPT["preset"])
    page.fill("input[name=samples_per_problem]", str(SAMPLES))
    page.fill("input[name=temperature]", "1")
    page.fill("input[name=max_tokens]", "16")
    page.fill("input[name=seed]", "0")
    page.click("button:has-text('Start the run')")
    page.wait_for_url("**/runs/*/")
    run = wait_for_run(page)
    right, wrong = int(page.inner_text("#count-right")), int(page.inner_text("#count-wrong"))
    assert right + wrong == PROBLEMS * SAMPLES and right > 0
    assert (right, wrong) == (Attempt.objects.filter(run=run, correct=True).count(),
                              Attempt.objects.filter(run=run, correct=False).count())
    snap(page, "03-gather.png", full_page=False)
    page.click("a:has-text('browse the mistakes')")
    page.wait_for_selector("#results table")
    assert f"{wrong} answers" in page.inner_text("#results")
    return run


def examine(page, student: str, name: str) -> Run:
    """Exams → New exam: ``student`` on the train split, asked as in the gather run, greedily."""
    page.click("nav >> text=Exams")
    page.click("a:has-text('New exam')")
    page.fill("input[name=name]", name)
    page.select_option("select[name=student]", label=student)
    page.check("input[name=datasets] >> nth=0")
    page.select_option("select[name=split]", "train")
    page.select_option("select[name=style]", PROMPT["style"])
    page.select_option("select[name=preset]", PROMPT["preset"])
    page.fill("input[name=temperature]", "0")
    page.fill("input[name=max_tokens]", "16")
    page.uncheck("input[name=near_duplicates]")  # exact copies are enough here; MiniLM would add a model load
    page.click("button:has-text('Start the exam')")
    page.wait_for_url("**/runs/*/")
    return Run.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))


def teach(page, gather_run: Run, teacher: str) -> Run:
    """From the finished gather run: ask the teacher (LEMA corrections) about every mistake."""
    page.click("nav >> text=Runs")
    page.click(f"table a[href$='/runs/{gather_run.pk}/'] >> nth=0")
    page.click("a:has-text('Ask teachers about these mistakes')")
    page.select_option("select[name=method]", "lema")
    page.check(f"label:has-text('{teacher}') input[name=teachers]")
    page.click("button:has-text('Estimate the cost')")
    page.wait_for_selector("#estimate:has-text('Estimate:')")
    wrong = Attempt.objects.filter(run=gather_run, correct=False).count()
    assert f"{wrong} sources" in page.inner_text("#estimate")
    page.click("button:has-text('Start the run')")
    page.wait_for_url(lambda url: "/runs/" in url and not url.endswith(f"/runs/{gather_run.pk}/"))
    run = wait_for_run(page)
    page.wait_for_selector("#teach-summary table")
    assert Feedback.objects.filter(run=run, parse_ok=True, auto_check=True).count() == wrong
    snap(page, "04-teach.png")
    return run


def create_queue(page, teach_run: Run, annotator) -> None:
    page.click("nav >> text=Review")
    page.fill("#new-queue input[name=name]", "LEMA corrections")
    page.select_option("#new-queue select[name=run]", str(teach_run.pk))
    page.select_option("#new-queue select[name=method]", "lema")
    page.check(f"#new-queue label:has-text('{annotator.username}') input")
    page.click("button:has-text('Create the queue')")
    page.wait_for_url("**/review/queues/*/")


def review_with_the_keyboard(page, base: str, annotator) -> list[Review]:
    """The annotator signs in, opens the queue and decides five items: approve, edit, reject, skip, approve."""
    page.goto(f"{base}/review/")
    page.fill("input[name=username]", annotator.username)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.click("a:has-text('Review (')")
    wait_until_ready(page)
    page.locator("body").focus()
    decided = []
    for key in ("a", "e", "r", "s", "a"):
        review = Review.objects.get(pk=int(shown_review(page)))
        decided.append(review)
        if key == "e":
            type_in_the_editor(page, "edited-text", " Check: count on from the score.")
            snap(page, "05-review.png")
            page.keyboard.press("Control+Enter")
        else:
            page.keyboard.press(key)
        page.wait_for_function(f"document.querySelector('#review-item').dataset.review !== '{review.pk}'")
    return [Review.objects.get(pk=review.pk) for review in decided]


def train(page, gather_run: Run, student: str) -> tuple[Run, Checkpoint]:
    """Train → Build a training set from the gather run's right answers, preview it, train a LoRA and serve it."""
    page.click("nav >> text=Train")
    page.click("a:has-text('Build a training set')")
    page.fill("input[name=name]", "right answers, as asked")
    page.select_option("select[name=source]", "gather")
    page.select_option("select[name=gather_run]", str(gather_run.pk))
    page.fill("input[name=validation_share]", "0")
    page.click("button:has-text('Build')")
    page.wait_for_selector("#preview .rendered")
    solved = Attempt.objects.filter(run=gather_run, correct=True).values("problem").distinct().count()
    examples = TrainingSet.objects.get().counts["train"]
    assert examples >= solved and page.inner_text("#split-counts").startswith(f"{examples} training, 0 validation")
    page.click("a:has-text('Train on it')")
    page.fill("input[name=name]", "GSI round 1")
    page.select_option("select[name=base]", label=student)
    page.select_option("select[name=preset]", "cpu-lora-tiny")
    page.fill("input[name=max_steps]", str(TRAIN_STEPS))
    page.fill("input[name=max_length]", "256")  # the preset's 128 tokens would cut the question (one token a byte)
    assert page.is_checked("input[name=auto_register]")
    page.click("button:has-text('Start training')")
    page.wait_for_url("**/runs/*/")
    run = wait_for_run(page, timeout=4 * MINUTE)
    checkpoint = wait_for(lambda: Checkpoint.objects.filter(run=run, is_final=True, endpoint__isnull=False).first(),
                          timeout=60, what="the trained checkpoint to be served")
    page.reload()
    assert checkpoint.endpoint.name in page.inner_text("#checkpoints")
    page.wait_for_selector("svg.loss-chart polyline.train-loss")
    snap(page, "06-train.png", height=1300)
    return run, checkpoint


def compare(page, before: Run, after: Run) -> str:
    """Exams → Compare two exams."""
    page.click("nav >> text=Exams")
    page.select_option("select[name=before]", str(before.pk))
    page.select_option("select[name=after]", str(after.pk))
    page.click("button:has-text('Compare')")
    page.wait_for_selector("#sentence")
    snap(page, "07-compare.png", height=1500)
    return page.inner_text("#sentence")


def chat(page, base: str, assistant: str) -> None:
    """Chat → Start chat with the trained model; the answer streams in and is kept."""
    page.click("nav >> text=Chat")
    page.select_option("select[name=endpoint]", label=f"{assistant} (trained checkpoint)")
    page.click("button:has-text('Start chat')")
    page.wait_for_url(f"{base}/chat/*/")
    page.wait_for_function("!document.querySelector('#send').disabled")
    page.evaluate("""() => {
        window.statuses = [];
        new MutationObserver(records => records.forEach(r => {
            const article = r.target.closest && r.target.closest('article.assistant');
            if (article) window.statuses.push(article.dataset.status);
        })).observe(document.querySelector('#messages'),
                    {subtree: true, childList: true, attributes: true, characterData: true});
    }""")
    page.fill("#chat-input", question(*problems()[0]))
    page.keyboard.press("Enter")
    page.wait_for_selector("#messages article.assistant[data-status=complete]")
    assert page.evaluate("window.statuses.includes('streaming')")
    snap(page, "08-chat.png", full_page=False)


def exam_answers(run: Run) -> dict[int, bool]:
    return dict(ExamAnswer.objects.filter(run=run).values_list("problem_id", "correct"))


def test_a_researcher_and_an_annotator_go_round_the_whole_loop(live_errata, models, browser_page, researcher,
                                                                annotator, tmp_path):
    base, researcher_page, annotator_page = live_errata, new_page(browser_page), new_page(browser_page)
    sign_in(researcher_page, base, researcher.username)
    researcher_page.wait_for_url(f"{base}/datasets/")
    import_dataset(researcher_page, write_gsm8k(tmp_path / "train.jsonl"))
    gather_run = gather(researcher_page)
    before = examine(researcher_page, models.student.name, "before training")  # runs while the teacher works
    teach_run = teach(researcher_page, gather_run, models.teacher.name)
    create_queue(researcher_page, teach_run, annotator)

    decided = review_with_the_keyboard(annotator_page, base, annotator)
    assert [review.decision for review in decided] == ["approve", "edit", "reject", "skip", "approve"]
    assert decided[1].edited_text == decided[1].feedback.text + " Check: count on from the score."
    assert Review.objects.filter(decision__in=[Decision.APPROVE, Decision.EDIT]).count() == 3

    _, checkpoint = train(researcher_page, gather_run, models.student.name)
    after = examine(researcher_page, checkpoint.endpoint.name, "after training")
    assert wait_for_run(researcher_page, timeout=2 * MINUTE).pk == after.pk
    before.refresh_from_db()
    assert before.status == RunStatus.SUCCEEDED, before.error
    sentence = compare(researcher_page, before, after)

    right_before, right_after = exam_answers(before), exam_answers(after)
    assert len(right_before) == len(right_after) == PROBLEMS
    fixed = sum(right_after[p] and not right_before[p] for p in right_before)
    broken = sum(right_before[p] and not right_after[p] for p in right_before)
    still_wrong = sum(not right_before[p] and not right_after[p] for p in right_before)
    assert sum(right_after.values()) >= sum(right_before.values()) + 10, sentence
    trained_on = set(Attempt.objects.filter(run=gather_run, correct=True).values_list("problem", flat=True))
    assert {a.problem_id for a in ExamAnswer.objects.filter(run=after) if a.contamination} == trained_on  # flagged
    assert f"{fixed} fixed, {broken} broken, {still_wrong} still wrong" in sentence
    assert f"p = {mcnemar_exact(fixed, broken):.3g}, a significant improvement at the 5% level" in sentence

    chat(researcher_page, base, checkpoint.endpoint.name)
    answer = ChatMessage.objects.filter(role="assistant").get()
    assert answer.status == "complete" and answer.content.strip()
    assert answer.session.endpoint_name == checkpoint.endpoint.name

    researcher_page.click("a.brand")
    assert "Go round again" in researcher_page.inner_text("#next-step")  # every step taken
    assert researcher_page.locator("ol.stepper li.done").count() == 7
    snap(researcher_page, "01-home.png")
