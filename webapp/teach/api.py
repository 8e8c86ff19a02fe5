"""REST API for teach: launch or estimate a teacher run, import released feedback, browse feedback, read and version
prompt templates."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from pipeline.teach_config import parse_teach_config
from pipeline.teaching import TemplateError
from webapp.core.uploads import validate_upload_size
from webapp.runs.api import RunSerializer
from webapp.runs.models import Run, RunKind
from webapp.teach.imports import FORMATS as FEEDBACK_FORMATS
from webapp.teach.imports import IMPORT_ERRORS, feedback_import_upload
from webapp.teach.models import Feedback, PromptTemplate
from webapp.teach.selectors import feedback_search
from webapp.teach.services import TeachLaunchError, teach_estimate, teach_launch
from webapp.teach.templates_store import template_ensure_defaults, template_new_version


class TeachLaunchSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    config = serializers.JSONField(help_text="method, teacher_endpoint_ids, gather_run_id | attempt_ids | dataset_id+split, "
                                             "samples, decoding, budget_usd, hint_answer, use_cache, template_versions")


class FeedbackImportSerializer(serializers.Serializer):
    file = serializers.FileField(validators=[validate_upload_size],
                                 help_text="SALAM finetune data, or a FAIR *_feedback_round0.json / *_rationale_round0.json")
    format = serializers.ChoiceField(choices=[""] + list(FEEDBACK_FORMATS), required=False, default="",
                                     help_text="Empty: detected from the content")
    teacher_name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200,
                                         help_text="SALAM's teacher (default gpt-4); FAIR files name theirs")


class FeedbackImportedSerializer(serializers.Serializer):
    run = RunSerializer()
    already = serializers.BooleanField(help_text="Imported before: nothing added")
    report = serializers.ListField(child=serializers.CharField(), help_text="What the import did, in sentences")


class FeedbackSerializer(serializers.ModelSerializer):
    class Meta:
        model = Feedback
        fields = ["id", "run", "attempt", "problem", "method", "teacher", "teacher_name", "sample_index", "template",
                  "raw_output", "parse_ok", "parse_error", "fields", "text", "corrected_answer", "auto_check",
                  "peer_scores", "peer_mean", "peer_accepted", "prompt_tokens", "completion_tokens", "cost", "created_at"]
        read_only_fields = fields


class PromptTemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = PromptTemplate
        fields = ["id", "name", "method", "version", "system", "user", "note", "created_at"]
        read_only_fields = ["id", "method", "version", "created_at"]


class TeachRunViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    queryset = Run.objects.filter(kind=RunKind.TEACH)
    serializer_class = TeachLaunchSerializer

    @extend_schema(request=TeachLaunchSerializer, responses={201: RunSerializer})
    def create(self, request, *args, **kwargs):
        payload = TeachLaunchSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            run = teach_launch(user=request.user, data=payload.validated_data["config"], name=payload.validated_data["name"])
        except TeachLaunchError as error:
            return Response({"config": [str(error)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request={"multipart/form-data": FeedbackImportSerializer},
                   responses={201: FeedbackImportedSerializer, 200: FeedbackImportedSerializer, 400: OpenApiResponse()})
    @action(detail=False, methods=["post"], url_path="import", serializer_class=FeedbackImportSerializer)
    def import_file(self, request):
        """Import the papers' released feedback as a finished teacher run (200 when the file was imported before)."""
        payload = FeedbackImportSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            imported = feedback_import_upload(user=request.user, upload=payload.validated_data["file"],
                                              format=payload.validated_data["format"] or None,
                                              teacher_name=payload.validated_data["teacher_name"])
        except IMPORT_ERRORS as error:
            return Response({"file": [f"Nothing was imported: {error}"]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(FeedbackImportedSerializer(imported._asdict()).data,
                        status=status.HTTP_200_OK if imported.already else status.HTTP_201_CREATED)

    @extend_schema(request=TeachLaunchSerializer, responses={200: dict})
    @action(detail=False, methods=["post"])
    def estimate(self, request):
        """Requests, tokens and dollars the run would take, before launching it."""
        payload = TeachLaunchSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            return Response(teach_estimate(parse_teach_config(payload.validated_data["config"])))
        except (TeachLaunchError, ValueError) as error:
            return Response({"config": [str(error)]}, status=status.HTTP_400_BAD_REQUEST)


class FeedbackViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = FeedbackSerializer

    def get_queryset(self):
        return feedback_search(self.request.query_params) if self.action == "list" else Feedback.objects.all()


class PromptTemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Templates are versioned: creating one with an existing name saves its next version."""

    serializer_class = PromptTemplateSerializer

    def get_queryset(self):
        template_ensure_defaults()
        return PromptTemplate.objects.all()

    def create(self, request, *args, **kwargs):
        data = request.data
        try:
            saved = template_new_version(name=data.get("name", ""), system=data.get("system", ""),
                                         user_text=data.get("user", ""), note=data.get("note", ""), user=request.user)
        except (TemplateError, ValueError) as error:
            return Response({"user": [str(error)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(PromptTemplateSerializer(saved).data, status=status.HTTP_201_CREATED)
