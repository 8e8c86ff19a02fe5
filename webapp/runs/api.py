"""REST API for runs of every kind: read progress, cancel, resume."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from webapp.runs.dispatch import run_enqueue
from webapp.runs.models import Run
from webapp.runs.services import RunStateError, run_cancel, run_requeue


class RunSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)
    rate_per_s = serializers.FloatField(read_only=True, allow_null=True)
    seconds_left = serializers.FloatField(read_only=True, allow_null=True)
    looks_dead = serializers.BooleanField(read_only=True)

    class Meta:
        model = Run
        fields = ["id", "kind", "name", "status", "config", "created_at", "started_at", "finished_at", "heartbeat_at",
                  "progress_done", "progress_total", "percent", "rate_per_s", "seconds_left", "phase", "counts",
                  "requests", "failed_requests", "cached_requests", "prompt_tokens", "completion_tokens", "cost",
                  "cancel_requested", "error", "looks_dead"]
        read_only_fields = fields


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Run.objects.all()
    serializer_class = RunSerializer

    def get_queryset(self):
        runs = Run.objects.all()
        for field in ("kind", "status"):
            if self.request.query_params.get(field):
                runs = runs.filter(**{field: self.request.query_params[field]})
        return runs

    def _act(self, change) -> Response:
        try:
            run = change(self.get_object())
        except RunStateError as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(RunSerializer(run).data)

    @extend_schema(request=None, responses={200: RunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop the run at its next safe point; what it has done is kept."""
        return self._act(lambda run: run_cancel(run=run))

    @extend_schema(request=None, responses={200: RunSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Queue a failed, cancelled or dead run again; finished work is not redone."""
        def requeue(run):
            run = run_requeue(run=run)
            run_enqueue(run)
            return run

        return self._act(requeue)
