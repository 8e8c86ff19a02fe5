"""REST API for model endpoints, with the connection check as an action."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from pipeline.decoding import DecodingError, validate_decoding
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.endpoints.services import endpoint_check_connection


class ModelEndpointSerializer(serializers.ModelSerializer):
    roles = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = ModelEndpoint
        fields = ["id", "name", "kind", "base_url", "model_name", "api_key_env", "base_weights", "gguf_file", "adapters",
                  "as_student", "as_teacher", "as_assistant", "roles", "default_params", "max_concurrency",
                  "price_in_per_1k", "price_out_per_1k", "is_active", "created_at", "last_check_at", "last_check_ok",
                  "last_check_message", "last_check_latency_ms", "announced_by", "announced_gpus", "last_seen_at"]
        read_only_fields = ["created_at", "last_check_at", "last_check_ok", "last_check_message", "last_check_latency_ms",
                            "announced_by", "announced_gpus", "last_seen_at"]

    def validate_default_params(self, value):
        try:
            return validate_decoding(value)
        except DecodingError as error:
            raise serializers.ValidationError(str(error)) from None

    def _value(self, data: dict, field: str):
        """The value after this request: sent, else the stored one, else the model's default."""
        if field in data:
            return data[field]
        if self.instance is not None:
            return getattr(self.instance, field)
        return ModelEndpoint._meta.get_field(field).get_default()

    def validate(self, data):
        merged = {field: self._value(data, field) for field in
                  ("kind", "base_weights", "as_student", "as_teacher", "as_assistant")}
        if not (merged["as_student"] or merged["as_teacher"] or merged["as_assistant"]):
            raise serializers.ValidationError("choose at least one role: student, teacher or assistant")
        if merged["kind"] == EndpointKind.LOCAL and not merged["base_weights"]:
            raise serializers.ValidationError({"base_weights": "a local model needs its base weights"})
        return data


CheckSerializer = inline_serializer("ConnectionCheck", fields={
    "ok": serializers.BooleanField(), "answer": serializers.CharField(allow_null=True),
    "error": serializers.CharField(allow_null=True), "latency_ms": serializers.IntegerField(),
    "prompt_tokens": serializers.IntegerField(), "completion_tokens": serializers.IntegerField(),
})


class ModelEndpointViewSet(viewsets.ModelViewSet):
    queryset = ModelEndpoint.objects.all()
    serializer_class = ModelEndpointSerializer

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)

    @extend_schema(request=None, responses={200: CheckSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send one short request to the model and report the answer, latency and any error in plain words."""
        result = endpoint_check_connection(endpoint=self.get_object())
        return Response({
            "ok": result.ok, "answer": result.texts[0] if result.ok else None, "error": result.error,
            "latency_ms": round(result.latency_s * 1000), "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
        })
