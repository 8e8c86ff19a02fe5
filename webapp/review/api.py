"""REST API for review: queues (researchers) with progress, agreement, bulk decisions and exports; reviews (everyone, their own)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from pipeline.exports import EXPORT_FORMATS
from webapp.accounts.permissions import IsSignedIn
from webapp.review.models import Decision, Priority, Review, ReviewQueue
from webapp.review.selectors import (
    APPROVAL_RULES, BULK_FILTERS, FeedbackFilter, annotator_progress, feedback_search, queue_agreement, queue_progress,
    review_with_context,
)
from webapp.review.services import (
    ExportError, ReviewConflict, ReviewError, queue_create, review_next, review_submit, reviews_bulk_decide,
    download_type, training_data_file,
)
from webapp.teach.models import Feedback


class ReviewSerializer(serializers.ModelSerializer):
    class Meta:
        model = Review
        fields = ["id", "queue", "feedback", "annotator", "position", "decision", "edited_text", "comment",
                  "seconds_spent", "version", "decided_at"]
        read_only_fields = fields


class ReviewItemSerializer(ReviewSerializer):
    """A review with what the annotator needs to decide it: the problem, the wrong answer, the feedback."""

    item = serializers.SerializerMethodField()

    class Meta(ReviewSerializer.Meta):
        fields = ReviewSerializer.Meta.fields + ["item"]
        read_only_fields = fields

    def get_item(self, review: Review) -> dict:
        feedback = review.feedback
        problem, attempt = feedback.problem, feedback.attempt
        return {
            "problem": {"id": problem.pk, "external_id": problem.external_id, "task": problem.task,
                        "question": problem.question, "choices": problem.choices, "gold_answer": problem.gold_answer},
            "wrong_answer": None if attempt is None else {  # None: an LbT rationale, about the problem itself
                "attempt": attempt.pk, "extracted": attempt.extracted, "raw_output": attempt.raw_output},
            "feedback": {"method": feedback.method, "teacher": feedback.teacher_name, "fields": feedback.fields,
                         "text": feedback.text, "corrected_answer": feedback.corrected_answer,
                         "parse_ok": feedback.parse_ok, "parse_error": feedback.parse_error,
                         "auto_check": feedback.auto_check, "peer_scores": feedback.peer_scores,
                         "peer_mean": feedback.peer_mean, "peer_accepted": feedback.peer_accepted},
        }


class DecideSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=0, help_text="The version you loaded; a newer saved one is a conflict.")
    decision = serializers.ChoiceField(choices=[d for d in Decision.values if d != Decision.PENDING])
    edited_text = serializers.CharField(required=False, default="", allow_blank=True, trim_whitespace=False)
    comment = serializers.CharField(required=False, default="", allow_blank=True)
    seconds = serializers.FloatField(required=False, default=0.0, min_value=0)


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    current = ReviewItemSerializer()


class ReviewViewSet(viewsets.ReadOnlyModelViewSet):
    """Annotators see and decide only their own reviews; researchers see everyone's."""

    permission_classes = [IsSignedIn]
    serializer_class = ReviewSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        reviews = review_with_context().order_by("queue_id", "annotator_id", "position")
        if not self.request.user.is_researcher:
            reviews = reviews.filter(annotator=self.request.user)
        params = self.request.query_params
        for name, field in (("queue", "queue_id"), ("annotator", "annotator_id")):
            if params.get(name, "").isdigit():
                reviews = reviews.filter(**{field: int(params[name])})
        if params.get("decision") in Decision.values:
            reviews = reviews.filter(decision=params["decision"])
        return reviews

    def get_serializer_class(self):
        return ReviewItemSerializer if self.action in ("retrieve", "next") else ReviewSerializer

    @extend_schema(parameters=[OpenApiParameter("queue", int), OpenApiParameter("decision", str, enum=Decision.values),
                               OpenApiParameter("annotator", int, description="Researchers only")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(parameters=[OpenApiParameter("queue", int, required=True),
                               OpenApiParameter("skipped", bool, description="Go back over skipped items when none is pending")],
                   responses={200: ReviewItemSerializer, 204: OpenApiResponse(description="Nothing left to review")})
    @action(detail=False, methods=["get"])
    def next(self, request):
        """Your next item in a queue (lowest position first)."""
        queue_id = request.query_params.get("queue", "")
        if not queue_id.isdigit():
            return Response({"queue": ["Give the queue's id: ?queue=ID"]}, status=status.HTTP_400_BAD_REQUEST)
        review = review_next(annotator=request.user, queue=int(queue_id),
                             revisit_skipped=request.query_params.get("skipped") in ("1", "true"))
        if review is not None:
            return Response(ReviewItemSerializer(review).data)
        get_object_or_404(ReviewQueue, pk=queue_id, annotators=request.user)  # not yours: 404
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=DecideSerializer, responses={200: ReviewSerializer, 400: OpenApiResponse(),
                                                        403: OpenApiResponse(description="Someone else's review"),
                                                        409: ConflictSerializer})
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        """Save your decision; 409 with the current review when it changed since ``version``."""
        payload = DecideSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            review = review_submit(review_id=int(pk), user=request.user, **payload.validated_data)
        except Review.DoesNotExist:
            raise Http404 from None  # someone else's review is a 403 (PermissionDenied from the service)
        except ReviewConflict as conflict:
            return Response({"detail": "Saved by someone else since you loaded it: not saved.",
                             "current": ReviewItemSerializer(conflict.current).data}, status=status.HTTP_409_CONFLICT)
        except ReviewError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ReviewSerializer(review, context={"request": request}).data)


# --- Queues -------------------------------------------------------------------------------------


class ReviewQueueSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReviewQueue
        fields = ["id", "name", "description", "source", "annotators", "per_item", "priority", "seed", "created_by",
                  "created_at"]
        read_only_fields = fields


class QueueCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, default="", allow_blank=True)
    annotators = serializers.PrimaryKeyRelatedField(many=True, queryset=get_user_model().objects.filter(is_active=True))
    per_item = serializers.IntegerField(min_value=1, default=1)
    priority = serializers.ChoiceField(choices=Priority.values, default=Priority.CHECKS_FIRST)
    seed = serializers.IntegerField(min_value=0, default=0)
    run = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="A teacher run's feedback.")
    method = serializers.CharField(required=False, default="", allow_blank=True)
    teacher = serializers.CharField(required=False, default="", allow_blank=True)
    checks = serializers.ChoiceField(choices=["", "failed", "passed"], required=False, default="")
    unreviewed = serializers.BooleanField(required=False, default=False)
    feedback = serializers.ListField(child=serializers.IntegerField(), required=False,
                                     help_text="Exact feedback ids instead of the filter.")


class BulkSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[Decision.APPROVE, Decision.REJECT])
    filter = serializers.ChoiceField(choices=list(BULK_FILTERS))


class ExportNegotiation(DefaultContentNegotiation):
    """The export's ``?format=`` names the training-data format, not a DRF renderer: answer JSON for errors."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ReviewQueueViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                         viewsets.GenericViewSet):
    lookup_value_regex = r"\d+"
    queryset = ReviewQueue.objects.prefetch_related("annotators")
    serializer_class = ReviewQueueSerializer

    @extend_schema(request=QueueCreateSerializer, responses={201: ReviewQueueSerializer})
    def create(self, request, *args, **kwargs):
        payload = QueueCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        spec = FeedbackFilter(run=data["run"], method=data["method"], teacher=data["teacher"], checks=data["checks"],
                              unreviewed=data["unreviewed"])
        if "feedback" in data:
            feedback, source = Feedback.objects.filter(pk__in=data["feedback"]), {"feedback_ids": len(data["feedback"])}
        else:
            feedback, source = feedback_search(spec), spec.as_source()
        try:
            queue = queue_create(name=data["name"], description=data["description"], feedback=feedback,
                                 annotators=data["annotators"], per_item=data["per_item"], priority=data["priority"],
                                 seed=data["seed"], user=request.user, source=source)
        except ReviewError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ReviewQueueSerializer(queue).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, *args, **kwargs):
        """The queue with its progress (overall and per annotator) and agreement."""
        queue = self.get_object()
        return Response(ReviewQueueSerializer(queue).data | {
            "progress": queue_progress(queue), "annotator_progress": annotator_progress(queue),
            "agreement": queue_agreement(queue)})

    @extend_schema(request=BulkSerializer, responses={200: OpenApiResponse(description='{"updated": n}')})
    @action(detail=True, methods=["post"])
    def bulk(self, request, pk=None):
        """Approve or reject every pending review matching a named filter."""
        payload = BulkSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        count = reviews_bulk_decide(queue=self.get_object(), user=request.user, **payload.validated_data)
        return Response({"updated": count})

    @extend_schema(parameters=[OpenApiParameter("format", str, enum=sorted(EXPORT_FORMATS), required=True),
                               OpenApiParameter("rule", str, enum=list(APPROVAL_RULES))],
                   responses={200: OpenApiResponse(description="The file; X-Errata-Exported: approved items written, "
                                                               "X-Errata-Left-Out: items the format cannot hold (DPO: "
                                                               "no wrong answer to reject), X-Errata-Note: why"),
                              400: OpenApiResponse()})
    @action(detail=True, methods=["get"], content_negotiation_class=ExportNegotiation)
    def export(self, request, pk=None):
        """The queue's approved items as a training-data file; headers say how many, and what was left out."""
        queue = self.get_object()
        format, rule = request.query_params.get("format", ""), request.query_params.get("rule", "majority")
        if format not in EXPORT_FORMATS or rule not in APPROVAL_RULES:
            return Response({"detail": f"?format= one of {', '.join(sorted(EXPORT_FORMATS))}; "
                                       f"?rule= one of {', '.join(APPROVAL_RULES)}"}, status=status.HTTP_400_BAD_REQUEST)
        try:
            handle, name, summary = training_data_file(queue=queue, format=format, rule=rule)
        except ExportError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return FileResponse(handle, as_attachment=True, filename=name, content_type=download_type(name),
                            headers=summary.headers)
