"""REST API for chat, for any signed-in user, on their own conversations only: list and start conversations,
read and send messages (the answer comes back whole: streaming is the websocket's), regenerate, explain a mistake."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from pipeline.chat import Mistake
from pipeline.markdown import render_markdown
from webapp.accounts.permissions import IsSignedIn
from webapp.chat.explain import mistake_explain
from webapp.chat.models import ChatMessage, ChatSession
from webapp.chat.selectors import assistant_endpoints, session_messages, sessions_of
from webapp.chat.services import ChatRefused, attempt_mistake, chat_answer, session_create
from webapp.gather.models import Attempt

REFUSAL_STATUS = {"rate_limited": status.HTTP_429_TOO_MANY_REQUESTS, "unavailable": status.HTTP_409_CONFLICT}


class AssistantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    model_name = serializers.CharField()
    trained = serializers.BooleanField(help_text="Served from a training checkpoint (else a base model).")


class ChatMessageSerializer(serializers.ModelSerializer):
    html = serializers.SerializerMethodField()

    class Meta:
        model = ChatMessage
        fields = ["id", "role", "content", "html", "status", "error", "tokens", "created_at"]
        read_only_fields = fields

    def get_html(self, message: ChatMessage) -> str:
        """The content as markdown and math rendered to sanitised HTML."""
        return render_markdown(message.content)


class ChatSessionSerializer(serializers.ModelSerializer):
    endpoint = serializers.PrimaryKeyRelatedField(queryset=assistant_endpoints(), help_text="An active assistant endpoint.")
    attempt = serializers.IntegerField(write_only=True, required=False,
                                       help_text="Discuss this student answer (researchers): its question, answer and gold.")

    class Meta:
        model = ChatSession
        fields = ["id", "endpoint", "endpoint_name", "title", "context", "attempt", "created_at", "updated_at"]
        read_only_fields = ["endpoint_name", "title", "context", "created_at", "updated_at"]


class SendSerializer(serializers.Serializer):
    content = serializers.CharField(trim_whitespace=False, allow_blank=True)


class ExplainSerializer(serializers.Serializer):
    endpoint = serializers.PrimaryKeyRelatedField(queryset=assistant_endpoints())
    question = serializers.CharField()
    answer = serializers.CharField()
    gold = serializers.CharField(required=False, default="", allow_blank=True)


def refusal(refused: ChatRefused) -> Response:
    return Response({"code": refused.code, "detail": refused.message},
                    status=REFUSAL_STATUS.get(refused.code, status.HTTP_400_BAD_REQUEST))


class ChatSessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                         viewsets.GenericViewSet):
    """My conversations with study assistants."""

    serializer_class = ChatSessionSerializer
    permission_classes = [IsSignedIn]
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return sessions_of(self.request.user)

    def perform_create(self, serializer) -> None:
        attempt_id = serializer.validated_data.get("attempt")
        mistake, extra = None, None
        if attempt_id is not None:
            if not self.request.user.is_researcher:
                raise PermissionDenied("Discussing a student model's answer is for researchers and admins.")
            mistake = attempt_mistake(get_object_or_404(Attempt.objects.select_related("problem"), pk=attempt_id))
            extra = {"kind": "mistake", "attempt_id": attempt_id}
        serializer.instance = session_create(owner=self.request.user, endpoint=serializer.validated_data["endpoint"],
                                             mistake=mistake, extra=extra)

    @extend_schema(methods=["GET"], responses=ChatMessageSerializer(many=True))
    @extend_schema(methods=["POST"], request=SendSerializer,
                   responses={201: ChatMessageSerializer(many=True), 400: OpenApiResponse(), 429: OpenApiResponse()})
    @action(detail=True, methods=["get", "post"])
    def messages(self, request, pk=None):
        """GET: the conversation's messages. POST {content}: send one and wait for the whole answer."""
        session = self.get_object()
        if request.method == "GET":
            return Response(ChatMessageSerializer(session_messages(session), many=True).data)
        payload = SendSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            saved = chat_answer(session=session, user=request.user, content=payload.validated_data["content"])
        except ChatRefused as refused:
            return refusal(refused)
        return Response(ChatMessageSerializer(saved, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={201: ChatMessageSerializer(many=True), 400: OpenApiResponse()})
    @action(detail=True, methods=["post"])
    def regenerate(self, request, pk=None):
        """Answer the last message again; the new answer replaces the last one."""
        try:
            saved = chat_answer(session=self.get_object(), user=request.user, content=None, regenerate=True)
        except ChatRefused as refused:
            return refusal(refused)
        return Response(ChatMessageSerializer(saved, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=AssistantSerializer(many=True))
    @action(detail=False, methods=["get"])
    def assistants(self, request):
        """The assistants one may chat with: base models and trained checkpoints."""
        return Response(AssistantSerializer(assistant_endpoints(), many=True).data)

    @extend_schema(request=ExplainSerializer, responses={201: OpenApiResponse(description="session, ok, reason, "
                   "guideline, raw, error, cited"), 400: OpenApiResponse(), 429: OpenApiResponse()})
    @action(detail=False, methods=["post"])
    def explain(self, request):
        """Explain my mistake: SALAM feedback {reason, guideline} and similar approved past mistakes, saved as a chat.

        The answer comes back whole, not streamed (the page streams it over the chat websocket instead).
        """
        payload = ExplainSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        mistake = Mistake(question=data["question"], answer=data["answer"], gold=data["gold"])
        try:
            result = mistake_explain(user=request.user, endpoint=data["endpoint"], mistake=mistake)
        except ChatRefused as refused:
            return refusal(refused)
        feedback = result.feedback
        body = {"session": result.session.pk, "ok": bool(feedback and feedback.ok), "error": result.error,
                "reason": feedback.reason if feedback else "", "guideline": feedback.guideline if feedback else "",
                "raw": feedback.raw if feedback else "", "cited": result.cited}
        return Response(body, status=status.HTTP_201_CREATED)
