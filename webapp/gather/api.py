"""REST API for gather: launch a run from a JSON config, import a paper's answer file, and browse attempts with
the mistakes browser's filters."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from pipeline.benchmarks.records import DatasetFormatError
from pipeline.seeds import SEED_FORMATS
from webapp.core.uploads import validate_upload_size
from webapp.gather.models import Attempt
from webapp.gather.seeds import SeedImportError, seed_import_upload
from webapp.gather.selectors import AttemptFilter, attempt_search
from webapp.gather.services import GatherLaunchError, gather_launch
from webapp.runs.api import RunSerializer
from webapp.runs.models import Run, RunKind


class GatherLaunchSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    config = serializers.JSONField(help_text="dataset_id, student_endpoint_id, split, tasks, sample_size, sample_seed, "
                                             "samples_per_problem, prompt{style,preset,k_shots}, decoding, scorer, "
                                             "guidance{min_correct,max_resample,kinds,...}, teacher_endpoint_id, use_cache")


class SeedImportSerializer(serializers.Serializer):
    file = serializers.FileField(validators=[validate_upload_size],
                                 help_text="SALAM status.json or collections, FAIR *_round0.json, GSI results")
    format = serializers.ChoiceField(choices=[""] + list(SEED_FORMATS), required=False, default="",
                                     help_text="Empty: detected from the content")
    dataset_name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    model_name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200,
                                       help_text="The student that wrote the answers")


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

    @extend_schema(request={"multipart/form-data": SeedImportSerializer},
                   responses={201: RunSerializer, 200: RunSerializer, 400: OpenApiResponse()})
    @action(detail=False, methods=["post"], url_path="import", serializer_class=SeedImportSerializer)
    def import_file(self, request):
        """Import a paper's released answer file as a dataset and a finished gather run (200: imported before)."""
        payload = SeedImportSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        options = payload.validated_data
        try:
            imported = seed_import_upload(upload=options["file"], format=options["format"] or None, user=request.user,
                                          dataset_name=options["dataset_name"], model_name=options["model_name"])
        except (DatasetFormatError, SeedImportError) as error:
            return Response({"file": [f"Nothing was imported: {error}"]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(RunSerializer(imported.run).data,
                        status=status.HTTP_200_OK if imported.already else status.HTTP_201_CREATED)


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
