"""REST API for gather: launch a run from a JSON config, and browse attempts with the mistakes browser's filters."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from webapp.gather.models import Attempt
from webapp.gather.selectors import AttemptFilter, attempt_search
from webapp.gather.services import GatherLaunchError, gather_launch
from webapp.runs.api import RunSerializer
from webapp.runs.models import Run, RunKind


class GatherLaunchSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    config = serializers.JSONField(help_text="dataset_id, student_endpoint_id, split, tasks, sample_size, sample_seed, "
                                             "samples_per_problem, prompt{style,preset,k_shots}, decoding, scorer, "
                                             "guidance{min_correct,max_resample,kinds,...}, teacher_endpoint_id, use_cache")


class AttemptSerializer(serializers.ModelSerializer):
    problem_external_id = serializers.CharField(source="problem.external_id", read_only=True)
    task = serializers.CharField(source="problem.task", read_only=True)
    gold_answer = serializers.CharField(source="problem.gold_answer", read_only=True)

    class Meta:
        model = Attempt
        fields = ["id", "run", "problem", "problem_external_id", "task", "endpoint", "model_name", "sample_index", "round",
                  "guidance", "prompt", "raw_output", "extracted", "gold_answer", "correct", "scorer", "prompt_tokens",
                  "completion_tokens", "latency_ms", "created_at"]
        read_only_fields = fields


class GatherRunViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    queryset = Run.objects.filter(kind=RunKind.GATHER)
    serializer_class = GatherLaunchSerializer

    @extend_schema(request=GatherLaunchSerializer, responses={201: RunSerializer})
    def create(self, request, *args, **kwargs):
        payload = GatherLaunchSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            run = gather_launch(user=request.user, data=payload.validated_data["config"], name=payload.validated_data["name"])
        except GatherLaunchError as error:
            return Response({"config": [str(error)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


class AttemptViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AttemptSerializer

    @extend_schema(parameters=[
        OpenApiParameter("run", int), OpenApiParameter("dataset", int), OpenApiParameter("model", int),
        OpenApiParameter("task", str), OpenApiParameter("guidance", str),
        OpenApiParameter("correct", str, enum=["yes", "no"], description="no: the mistake collection"),
        OpenApiParameter("q", str, description="Words in the question or the answer"),
    ])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        if self.action == "list":
            return attempt_search(AttemptFilter.from_params(self.request.query_params))
        return Attempt.objects.select_related("problem")
