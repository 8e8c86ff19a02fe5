"""REST API for datasets, problems and imports (the same services as the pages)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from pipeline.benchmarks import FORMATS
from pipeline.splits import SPLIT_RULES
from webapp.core.uploads import validate_upload_size
from webapp.datasets import selectors
from webapp.datasets.models import Dataset, DatasetImport, Problem
from webapp.datasets.services import ImportOptions, ImportRejected, dataset_import_create
from webapp.datasets.tasks import import_dataset


class DatasetSerializer(serializers.ModelSerializer):
    problem_count = serializers.IntegerField(read_only=True)
    train_count = serializers.IntegerField(read_only=True)
    test_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "name", "benchmark", "answer_format", "scorer", "source", "license_note", "description",
                  "split_rule", "created_at", "problem_count", "train_count", "test_count"]
        read_only_fields = ["benchmark", "answer_format", "source", "split_rule", "created_at"]


class ProblemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Problem
        fields = ["id", "dataset", "external_id", "position", "split", "task", "question", "choices", "gold_answer",
                  "gold_rationale", "metadata", "question_hash"]
        read_only_fields = fields


class ImportSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetImport
        fields = ["id", "status", "phase", "dataset_name", "format", "detected_format", "options", "content_sha256",
                  "total_bytes", "records_read", "problems_added", "problems_skipped", "error", "dataset",
                  "created_at", "started_at", "finished_at"]
        read_only_fields = fields


class ImportCreateSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(validators=[validate_upload_size]), allow_empty=False)
    format = serializers.ChoiceField(choices=[""] + sorted(FORMATS), required=False, default="")
    dataset_name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    split_rule = serializers.ChoiceField(choices=SPLIT_RULES, default="auto")
    seed = serializers.IntegerField(default=0, min_value=0)
    test_fraction = serializers.FloatField(default=0.2, min_value=0.01, max_value=0.99)
    license_note = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                     mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = DatasetSerializer

    def get_queryset(self):
        return selectors.dataset_list()


class ProblemViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProblemSerializer

    @extend_schema(parameters=[
        OpenApiParameter("dataset", int, description="Dataset id"),
        OpenApiParameter("q", str, description="Words the question must contain"),
        OpenApiParameter("split", str, enum=["train", "test"]),
        OpenApiParameter("task", str),
    ])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        if self.action != "list" or not params.get("dataset"):
            return Problem.objects.order_by("dataset_id", "position")
        dataset = get_object_or_404(Dataset, pk=params["dataset"]) if params["dataset"].isdigit() else None
        if dataset is None:
            raise serializers.ValidationError({"dataset": "must be a dataset id"})
        return selectors.problem_search(dataset=dataset, query=params.get("q", ""), split=params.get("split", ""),
                                        task=params.get("task", ""))


class ImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Upload files to import (multipart), then poll the import until it has succeeded or failed."""

    queryset = DatasetImport.objects.all()
    serializer_class = ImportSerializer
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=ImportCreateSerializer, responses={202: ImportSerializer})
    def create(self, request):
        payload = ImportCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            job = dataset_import_create(user=request.user, options=ImportOptions.from_fields(**data), uploads=data["files"])
        except ImportRejected as error:
            raise serializers.ValidationError({"files": str(error)}) from None
        import_dataset.delay_on_commit(job.pk)
        return Response(ImportSerializer(job).data, status=status.HTTP_202_ACCEPTED)
