"""REST API for exams: launch or estimate (researchers); list, results, answers, comparison and export (anyone
signed in, like the report page)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from webapp.accounts.permissions import IsResearcher, IsSignedIn
from webapp.exams.exports import FORMATS, export_response
from webapp.exams.models import ExamAnswer
from webapp.exams.selectors import AnswerFilter, answer_search, exam_comparison, exam_results, exam_runs
from webapp.exams.services import ExamLaunchError, exam_estimate, exam_launch
from webapp.runs.api import RunSerializer
from webapp.runs.models import Run, RunKind

READ_ACTIONS = ("list", "retrieve", "answers", "export", "compare")


class ExamLaunchSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    config = serializers.JSONField(help_text="student_endpoint_id, dataset_ids, mode (plain|salam|lbt), split, tasks, "
                                             "sample_size, sample_seed, samples_per_problem, majority_vote, prompt, decoding, "
                                             "scorer, salam{assistant_endpoint_id,guideline,retrieve_from,top_k,threshold}, "
                                             "lbt{teacher_run_id,related_rule,exam_problems,repetitions,group_key}, "
                                             "exclude_contaminated, near_duplicates, use_cache")


class ExamSerializer(RunSerializer):
    results = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = RunSerializer.Meta.fields + ["results"]
        read_only_fields = fields

    def get_results(self, run: Run) -> dict | None:
        """Per-task accuracy with 95% intervals (one exam at a time: left out of the list)."""
        return exam_results(run).as_json() if self.context.get("with_results") else None


class ExamAnswerSerializer(serializers.ModelSerializer):
    problem_external_id = serializers.CharField(source="problem.external_id", read_only=True)
    task = serializers.CharField(source="problem.task", read_only=True)
    question = serializers.CharField(source="problem.question", read_only=True)
    gold_answer = serializers.CharField(source="problem.gold_answer", read_only=True)

    class Meta:
        model = ExamAnswer
        fields = ["id", "run", "problem", "problem_external_id", "task", "question", "gold_answer", "answer", "correct",
                  "votes", "samples", "attempt", "guidance", "retrieved", "lbt", "contamination", "excluded"]
        read_only_fields = fields


class ExamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Exam runs. Launching needs a researcher; reading is open to every signed-in user."""

    queryset = Run.objects.filter(kind=RunKind.EXAM)
    serializer_class = ExamSerializer
    lookup_value_regex = r"\d+"

    def get_permissions(self):
        return [IsSignedIn()] if self.action in READ_ACTIONS else [IsResearcher()]

    def get_queryset(self):
        return exam_runs()

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "with_results": self.action == "retrieve"}

    def _launch_data(self, request) -> dict:
        payload = ExamLaunchSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return payload.validated_data

    @extend_schema(request=ExamLaunchSerializer, responses={201: ExamSerializer, 400: OpenApiResponse()})
    def create(self, request, *args, **kwargs):
        data = self._launch_data(request)
        try:
            run = exam_launch(user=request.user, data=data["config"], name=data["name"])
        except ExamLaunchError as error:
            return Response({"config": [str(error)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ExamSerializer(run, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ExamLaunchSerializer, responses={200: dict, 400: OpenApiResponse()})
    @action(detail=False, methods=["post"])
    def estimate(self, request):
        """Problems, answers, requests, tokens and dollars the exam would take, before launching it."""
        try:
            return Response(exam_estimate(self._launch_data(request)["config"]))
        except ExamLaunchError as error:
            return Response({"config": [str(error)]}, status=status.HTTP_400_BAD_REQUEST)

    @extend_schema(parameters=[
        OpenApiParameter("verdict", str, enum=["right", "wrong", "contaminated", "excluded"]),
        OpenApiParameter("task", str), OpenApiParameter("q", str, description="Words in the question or the answer"),
    ], responses={200: ExamAnswerSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def answers(self, request, pk=None):
        """The final answer on each problem (paginated, filterable)."""
        rows = answer_search(self.get_object(), AnswerFilter.from_params(request.query_params))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(ExamAnswerSerializer(page, many=True).data)

    @extend_schema(parameters=[OpenApiParameter("as", str, enum=list(FORMATS), description="json (default) or csv")],
                   responses={200: OpenApiResponse(description="The answers as a file")})
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """Every final answer with the results, as a JSON or CSV download."""
        return export_response(self.get_object(), request.query_params.get("as", "json"))

    @extend_schema(parameters=[OpenApiParameter("before", int, required=True), OpenApiParameter("after", int, required=True)],
                   responses={200: dict, 400: OpenApiResponse()})
    @action(detail=False, methods=["get"])
    def compare(self, request):
        """Two exams on the problems both answered: difference with its interval, McNemar's test, flipped problems."""
        ids = [request.query_params.get(name, "") for name in ("before", "after")]
        runs = exam_runs().in_bulk([int(i) for i in ids if i.isdigit()])
        if not all(i.isdigit() and int(i) in runs for i in ids):
            return Response({"detail": "give two exam run ids as ?before=<id>&after=<id>"}, status=status.HTTP_400_BAD_REQUEST)
        comparison = exam_comparison(runs[int(ids[0])], runs[int(ids[1])])
        tasks = [{"task": t["task"], "before": t["before"].as_json(), "after": t["after"].as_json()} for t in comparison.tasks]
        return Response({"before_run": int(ids[0]), "after_run": int(ids[1]), "sentence": comparison.sentence,
                         **comparison.result.as_json(), "tasks": tasks})
