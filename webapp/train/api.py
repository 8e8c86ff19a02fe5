"""REST API for train: build and read training sets, launch runs and read their metrics, serve checkpoints."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from pipeline.training.config import PRESETS
from webapp.endpoints.models import ModelEndpoint
from webapp.review.models import ReviewQueue
from webapp.runs.api import RunSerializer
from webapp.runs.models import Run, RunKind
from webapp.train.models import Checkpoint, Target, TrainingExample, TrainingSet, TrainMetric
from webapp.train.runs import TrainLaunchError, train_launch
from webapp.train.serving import CheckpointServeError, checkpoint_register
from webapp.train.sets import TrainingSetError, training_set_from_gather, training_set_from_queue


class TrainingSetSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingSet
        fields = ["id", "name", "target", "source", "options", "counts", "train_file", "validation_file", "queue",
                  "created_by", "created_at"]
        read_only_fields = fields


class TrainingSetBuildSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    queue = serializers.PrimaryKeyRelatedField(queryset=ReviewQueue.objects.all(), required=False, allow_null=True, default=None)
    gather_run = serializers.PrimaryKeyRelatedField(queryset=Run.objects.filter(kind=RunKind.GATHER), required=False,
                                                    allow_null=True, default=None)
    target = serializers.ChoiceField(choices=[t for t in Target.values if t not in (Target.IMPORTED, Target.GSI_ITERATION)],
                                     required=False, default=Target.SALAM_ASSISTANT, help_text="With a queue.")
    rule = serializers.CharField(required=False, default="majority")
    cot_ratio = serializers.FloatField(required=False, default=0.0, min_value=0)
    validation_share = serializers.FloatField(required=False, default=0.1, min_value=0, max_value=0.5)
    seed = serializers.IntegerField(required=False, default=0, min_value=0)

    def validate(self, data):
        if (data["queue"] is None) == (data["gather_run"] is None):
            raise serializers.ValidationError("give a review queue (approved feedback) or a gather run (GSI), not both")
        return data


class TrainingExampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingExample
        fields = ["id", "position", "split", "part", "data", "feedback", "attempt", "reviews"]
        read_only_fields = fields


class TrainingSetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    queryset = TrainingSet.objects.all()
    serializer_class = TrainingSetSerializer

    @extend_schema(request=TrainingSetBuildSerializer, responses={201: TrainingSetSerializer, 400: OpenApiResponse()})
    def create(self, request, *args, **kwargs):
        """Build a set from a queue's approved reviews or a gather run's correct answers."""
        payload = TrainingSetBuildSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        common = {"name": data["name"], "validation_share": data["validation_share"], "seed": data["seed"],
                  "user": request.user}
        try:
            if data["queue"] is not None:
                built = training_set_from_queue(queue=data["queue"], target=data["target"], rule=data["rule"],
                                                cot_ratio=data["cot_ratio"], **common)
            else:
                built = training_set_from_gather(run=data["gather_run"], **common)
        except TrainingSetError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(TrainingSetSerializer(built).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: TrainingExampleSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def examples(self, request, pk=None):
        """The set's examples with where each came from (paginated)."""
        rows = TrainingExample.objects.filter(training_set=self.get_object()).order_by("position")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(TrainingExampleSerializer(page, many=True).data)


class TrainLaunchSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    training_set = serializers.PrimaryKeyRelatedField(queryset=TrainingSet.objects.all())
    base = serializers.PrimaryKeyRelatedField(queryset=ModelEndpoint.objects.all(), help_text="A local model endpoint.")
    preset = serializers.ChoiceField(choices=list(PRESETS), required=False, allow_null=True, default=None)
    config = serializers.JSONField(required=False, default=dict, help_text="TrainConfig fields; override the preset's.")
    auto_register = serializers.BooleanField(required=False, default=True)


class TrainMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainMetric
        fields = ["step", "epoch", "loss", "eval_loss", "learning_rate", "grad_norm", "tokens_per_s", "samples_per_s"]
        read_only_fields = fields


class TrainRunViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    queryset = Run.objects.filter(kind=RunKind.TRAIN)
    serializer_class = TrainLaunchSerializer
    lookup_value_regex = r"\d+"

    @extend_schema(request=TrainLaunchSerializer, responses={201: RunSerializer, 400: OpenApiResponse()})
    def create(self, request, *args, **kwargs):
        payload = TrainLaunchSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if not isinstance(data["config"], dict):
            return Response({"config": ["expected an object of TrainConfig fields"]}, status=status.HTTP_400_BAD_REQUEST)
        config = {**(PRESETS[data["preset"]] if data["preset"] else {}), **data["config"]}
        try:
            run = train_launch(user=request.user, training_set=data["training_set"], base=data["base"], config=config,
                               name=data["name"], auto_register=data["auto_register"])
        except TrainLaunchError as error:
            return Response({"config": [str(error)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: TrainMetricSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def metrics(self, request, pk=None):
        """Every reported step: loss, eval loss, learning rate, throughput (for your own charts)."""
        metrics = TrainMetric.objects.filter(run=self.get_object()).order_by("step")
        return Response(TrainMetricSerializer(metrics, many=True).data)


class CheckpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = Checkpoint
        fields = ["id", "run", "step", "path", "is_final", "kind", "merged_path", "base_model", "metrics", "config",
                  "endpoint", "created_at"]
        read_only_fields = fields


class CheckpointViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Checkpoint.objects.all()
    serializer_class = CheckpointSerializer

    def get_queryset(self):
        run = self.request.query_params.get("run", "")
        return Checkpoint.objects.filter(run_id=int(run)) if run.isdigit() else Checkpoint.objects.all()

    @extend_schema(request=None, responses={200: CheckpointSerializer, 400: OpenApiResponse()})
    @action(detail=True, methods=["post"])
    def serve(self, request, pk=None):
        """Load the final checkpoint into the model server and register it as a model endpoint."""
        checkpoint = self.get_object()
        try:
            checkpoint_register(checkpoint=checkpoint, user=request.user)
        except CheckpointServeError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        checkpoint.refresh_from_db()
        return Response(CheckpointSerializer(checkpoint).data)
