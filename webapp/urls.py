"""URL routes: pages, the REST API with its OpenAPI schema and docs, the admin."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from webapp.chat import api as chat_api
from webapp.core import views as core_views
from webapp.datasets import api as datasets_api
from webapp.endpoints import api as endpoints_api
from webapp.exams import api as exams_api
from webapp.gather import api as gather_api
from webapp.review import api as review_api
from webapp.runs import api as runs_api
from webapp.teach import api as teach_api
from webapp.train import api as train_api

router = DefaultRouter()
router.register("datasets", datasets_api.DatasetViewSet, basename="dataset")
router.register("problems", datasets_api.ProblemViewSet, basename="problem")
router.register("imports", datasets_api.ImportViewSet, basename="import")
router.register("endpoints", endpoints_api.ModelEndpointViewSet, basename="endpoint")
router.register("runs", runs_api.RunViewSet, basename="run")
router.register("gather-runs", gather_api.GatherRunViewSet, basename="gather-run")
router.register("attempts", gather_api.AttemptViewSet, basename="attempt")
router.register("teach-runs", teach_api.TeachRunViewSet, basename="teach-run")
router.register("feedback", teach_api.FeedbackViewSet, basename="feedback")
router.register("prompt-templates", teach_api.PromptTemplateViewSet, basename="prompt-template")
router.register("review-queues", review_api.ReviewQueueViewSet, basename="review-queue")
router.register("reviews", review_api.ReviewViewSet, basename="review")
router.register("training-sets", train_api.TrainingSetViewSet, basename="training-set")
router.register("train-runs", train_api.TrainRunViewSet, basename="train-run")
router.register("checkpoints", train_api.CheckpointViewSet, basename="checkpoint")
router.register("exams", exams_api.ExamViewSet, basename="exam")
router.register("chat-sessions", chat_api.ChatSessionViewSet, basename="chat-session")

urlpatterns = [
    path("", core_views.home, name="home"),
    path("health/", core_views.health, name="health"),
    path("accounts/", include("webapp.accounts.urls")),
    path("datasets/", include("webapp.datasets.urls")),
    path("models/", include("webapp.endpoints.urls")),
    path("runs/", include("webapp.runs.urls")),
    path("gather/", include("webapp.gather.urls")),
    path("teach/", include("webapp.teach.urls")),
    path("review/", include("webapp.review.urls")),
    path("train/", include("webapp.train.urls")),
    path("exams/", include("webapp.exams.urls")),
    path("chat/", include("webapp.chat.urls")),
    path("admin/", admin.site.urls),
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # A page for people: anonymous visitors go to sign-in rather than get a 401.
    path("api/docs/", login_required(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
]
