"""Train page URLs."""

from django.urls import path

from webapp.train import views

app_name = "train"
urlpatterns = [
    path("", views.train_index, name="index"),
    path("sets/new/", views.set_new, name="set_new"),
    path("sets/<int:pk>/", views.set_detail, name="set"),
    path("new/", views.train_new, name="new"),
    path("checkpoints/<int:pk>/serve/", views.checkpoint_serve, name="serve"),
]
