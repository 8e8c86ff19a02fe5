"""Where a user stands in the loop (dataset → gather → teach → review → train → exam → chat), and what comes next."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

from django.db.models import Count, Min, Q
from django.urls import reverse

from webapp.chat.models import ChatSession
from webapp.datasets.models import Dataset, Problem
from webapp.endpoints.models import ModelEndpoint
from webapp.exams.models import ExamAnswer
from webapp.gather.models import Attempt
from webapp.review.models import Decision, Review, ReviewQueue
from webapp.runs.models import Run, RunKind, RunStatus
from webapp.teach.models import Feedback
from webapp.train.models import Checkpoint, TrainingSet

DONE, CURRENT, LATER = "done", "current", "later"
APPROVED = (Decision.APPROVE, Decision.EDIT)
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
RESEARCHERS_DO_THIS = "A researcher does this step."

# What each step is for, in words for someone who has read none of the papers.
PURPOSES = {
    "dataset": "Bring in problems with their correct answers: the student model practises on some, is tested on "
               "the rest.",
    "gather": "The student model answers the practice problems. Every wrong answer is kept as a mistake to learn from.",
    "teach": "Stronger teacher models explain each mistake and write a correction, checked automatically where "
             "possible.",
    "review": "People read the teachers' explanations and approve, edit or reject them. Only approved ones are "
              "trained on.",
    "train": "Fine-tune a model on the approved explanations, then serve the result as a new model.",
    "exam": "Test a model on problems it never practised on, and compare its score before and after training.",
    "chat": "Talk with a model yourself, for instance ask it to explain a mistake.",
}


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Note:
    text: str
    link: Link | None = None


@dataclass(frozen=True)
class Tally:
    """One count and its noun ("1 problem", "3 problems"); ``url`` lists what it counts."""

    number: int
    one: str
    many: str
    url: str = ""

    @property
    def noun(self) -> str:
        return self.one if self.number == 1 else self.many


@dataclass(frozen=True)
class Step:
    """One step of the loop as one user sees it: no link to a page their role would be refused."""

    key: str
    name: str
    tallies: tuple[Tally, ...]
    done: bool
    url: str = ""  # the step's own page
    action: Link | None = None  # the page where the step is started
    notes: tuple[Note, ...] = ()
    state: str = LATER
    number: int = 0

    @property
    def purpose(self) -> str:
        return PURPOSES[self.key]


def loop_steps(user) -> list[Step]:
    """The seven steps in order, each marked done, current (the user's next step) or later; at most 13 queries
    whatever the amount of data."""
    runs, models, reviews = _run_counts(), _model_counts(), _review_counts(user)
    steps = [
        _researchers_only(_dataset_step(), user),
        _researchers_only(_gather_step(runs, models), user),
        _researchers_only(_teach_step(runs, models), user),
        _review_step(user, reviews),
        _researchers_only(_train_step(runs), user),
        _exam_step(user, runs),
        _chat_step(user),
    ]
    if user.is_researcher:
        current = next((step.key for step in steps if not step.done), None)
    else:  # annotators take no step but reviewing and chatting
        current = "review" if reviews["mine"] else "chat"
    return [replace(step, number=number, state=CURRENT if step.key == current else DONE if step.done else LATER)
            for number, step in enumerate(steps, start=1)]


def current_step(steps: list[Step]) -> Step | None:
    """The step to take next; None once a researcher has been round the whole loop."""
    return next((step for step in steps if step.state == CURRENT), None)


def _url(name: str, *args, fragment: str = "", **query) -> str:
    return reverse(name, args=args) + (f"?{urlencode(query)}" if query else "") + (f"#{fragment}" if fragment else "")


def _researchers_only(step: Step, user) -> Step:
    """A step only researchers take shows an annotator its counts and who takes it, and no links."""
    if user.is_researcher:
        return step
    return replace(step, url="", action=None, tallies=tuple(replace(tally, url="") for tally in step.tallies),
                   notes=(Note(RESEARCHERS_DO_THIS),))


# --- Counts shared by several steps ---------------------------------------------------------------


def _run_counts() -> dict[str, int]:
    """Runs of each kind: all, those still queued or running, those that succeeded; in one query."""
    counts = {}
    for kind in RunKind.values:
        counts[kind] = Count("id", filter=Q(kind=kind))
        counts[f"{kind}_active"] = Count("id", filter=Q(kind=kind, status__in=ACTIVE))
        counts[f"{kind}_succeeded"] = Count("id", filter=Q(kind=kind, status=RunStatus.SUCCEEDED))
    return Run.objects.aggregate(**counts)


def _model_counts() -> dict[str, int]:
    active = Q(is_active=True)
    return ModelEndpoint.objects.aggregate(student=Count("id", filter=active & Q(as_student=True)),
                                           teacher=Count("id", filter=active & Q(as_teacher=True)))


def _review_counts(user) -> dict[str, int | None]:
    """Researchers: every queue and review; annotators: their own. ``mine``: the user's pending reviews, in how
    many queues, and the first such queue."""
    researcher = user.is_researcher
    queues = ReviewQueue.objects.all() if researcher else ReviewQueue.objects.filter(annotators=user)
    reviews = Review.objects.all() if researcher else Review.objects.filter(annotator=user)
    mine = Q(annotator=user, decision=Decision.PENDING)
    return {"queues": queues.count()} | reviews.aggregate(
        approved=Count("feedback", filter=Q(decision__in=APPROVED), distinct=True),
        pending=Count("feedback", filter=Q(decision=Decision.PENDING), distinct=True),
        mine=Count("id", filter=mine), my_queues=Count("queue", filter=mine, distinct=True),
        my_first_queue=Min("queue", filter=mine),
    )


def _start(label: str, name: str, models: dict[str, int], role: str) -> Link:
    """Where a step starts, or first the page that registers the model it needs."""
    if not models[role]:
        return Link(f"Register a {role} model first", _url("endpoints:new"))
    return Link(label, _url(name))


def _in_progress(runs: dict[str, int], kind: str) -> tuple[Note, ...]:
    active = runs[f"{kind}_active"]
    if not active:
        return ()
    watch = Link("Watch", _url("runs:list", kind=kind))
    return (Note(f"{active} run{'s' if active != 1 else ''} in progress.", watch),)


# --- The steps ------------------------------------------------------------------------------------


def _dataset_step() -> Step:
    datasets, problems = Dataset.objects.count(), Problem.objects.count()
    return Step("dataset", "Dataset", (Tally(datasets, "dataset imported", "datasets imported", _url("datasets:list")),
                                       Tally(problems, "problem", "problems")),
                done=problems > 0, url=_url("datasets:list"), action=Link("Import a dataset", _url("datasets:import")))


def _gather_step(runs: dict[str, int], models: dict[str, int]) -> Step:
    mistakes = Attempt.objects.filter(run__kind=RunKind.GATHER, correct=False).count()
    runs_url = _url("runs:list", kind=RunKind.GATHER)
    return Step("gather", "Gather", (Tally(runs[RunKind.GATHER], "gather run", "gather runs", runs_url),
                                     Tally(mistakes, "mistake collected", "mistakes collected")),
                done=mistakes > 0, url=runs_url, action=_start("Start a gather run", "gather:new", models, "student"),
                notes=_in_progress(runs, RunKind.GATHER))


def _teach_step(runs: dict[str, int], models: dict[str, int]) -> Step:
    feedback = Feedback.objects.aggregate(written=Count("id"), unreadable=Count("id", filter=Q(parse_ok=False)))
    tallies = (Tally(runs[RunKind.TEACH], "teacher run", "teacher runs", _url("runs:list", kind=RunKind.TEACH)),
               Tally(feedback["written"], "feedback written", "feedback written", _url("teach:feedback-list")),
               Tally(feedback["unreadable"], "reply that could not be read", "replies that could not be read",
                     _url("teach:feedback-list", check="parse_failed")))
    return Step("teach", "Teach", tallies, done=feedback["written"] > feedback["unreadable"],
                url=_url("teach:feedback-list"), action=_start("Start a teacher run", "teach:new", models, "teacher"),
                notes=_in_progress(runs, RunKind.TEACH))


def _review_step(user, reviews: dict) -> Step:
    mine, queues = reviews["mine"], _url("review:queues")
    my_work = _url("review:work", reviews["my_first_queue"]) if mine else ""
    waiting = Tally(mine, "item waiting for you", "items waiting for you", my_work)
    if user.is_researcher:
        tallies = (Tally(reviews["queues"], "review queue", "review queues", queues),
                   Tally(reviews["approved"], "item approved", "items approved"),
                   Tally(reviews["pending"], "item waiting for a decision", "items waiting for a decision"),
                   *((waiting,) if mine else ()))
    else:
        tallies = (Tally(reviews["queues"], "queue you review", "queues you review", queues),
                   Tally(reviews["approved"], "item you approved", "items you approved"), waiting)
    notes = ()
    if reviews["my_queues"] > 1:
        notes = (Note(f"Your items are in {reviews['my_queues']} queues.", Link("See them all", queues)),)
    return Step("review", "Review", tallies, done=reviews["approved"] > 0, url=queues,
                action=_review_action(user, reviews, my_work), notes=notes)


def _review_action(user, reviews: dict, my_work: str) -> Link | None:
    """The user's own pending items first; else a researcher makes a queue, or follows the ones there are."""
    if reviews["mine"]:
        return Link(f"Review {reviews['mine']} item{'s' if reviews['mine'] != 1 else ''}", my_work)
    if not user.is_researcher:
        return None
    if not reviews["queues"]:
        return Link("Create a review queue", _url("review:queues", fragment="new-queue"))
    return Link("Follow the review queues", _url("review:queues"))


def _train_step(runs: dict[str, int]) -> Step:
    sets = TrainingSet.objects.count()
    served = Checkpoint.objects.filter(endpoint__isnull=False).count()
    runs_url = _url("runs:list", kind=RunKind.TRAIN)
    tallies = (Tally(sets, "training set", "training sets", _url("train:index")),
               Tally(runs[RunKind.TRAIN], "training run", "training runs", runs_url),
               Tally(served, "trained model served", "trained models served"))
    if not sets:
        action = Link("Build a training set", _url("train:set_new"))
    elif served or not runs["train_succeeded"]:
        action = Link("Launch a training run", _url("train:new"))
    else:  # trained, not yet served: the run's page has the button
        action = Link("Serve a finished model", runs_url)
    return Step("train", "Train", tallies, done=served > 0, url=_url("train:index"), action=action,
                notes=_in_progress(runs, RunKind.TRAIN))


def _exam_step(user, runs: dict[str, int]) -> Step:
    researcher = user.is_researcher
    notes = (*_latest_comparison(), *(_in_progress(runs, RunKind.EXAM) if researcher else ()))
    return Step("exam", "Exam", (Tally(runs[RunKind.EXAM], "exam", "exams", _url("exams:list")),),
                done=runs["exam_succeeded"] > 0, url=_url("exams:list"),
                action=Link("Start an exam", _url("exams:new")) if researcher else None, notes=notes)


def _latest_comparison() -> tuple[Note, ...]:
    """The two latest finished exams: each one's accuracy and a link to their paired comparison."""
    latest = list(Run.objects.filter(kind=RunKind.EXAM, status=RunStatus.SUCCEEDED)
                  .order_by("-created_at", "-id").values_list("pk", flat=True)[:2])
    if len(latest) < 2:
        return ()
    after, before = latest
    rows = (ExamAnswer.objects.filter(run__in=latest, excluded=False).order_by().values("run")
            .annotate(answered=Count("id"), right=Count("id", filter=Q(correct=True))))
    scores = {row["run"]: f"{100 * row['right'] / row['answered']:.1f}% right" for row in rows if row["answered"]}
    text = (f"Latest two exams: #{before} {scores.get(before, 'no answer counted')}, "
            f"then #{after} {scores.get(after, 'no answer counted')}.")
    return (Note(text, Link("Compare them", _url("exams:compare", before=before, after=after))),)


def _chat_step(user) -> Step:
    chats = ChatSession.objects.filter(owner=user).count()
    return Step("chat", "Chat", (Tally(chats, "chat you started", "chats you started", _url("chat:list")),),
                done=chats > 0, url=_url("chat:list"),
                action=Link("Start a chat", _url("chat:list", fragment="new-chat")))
