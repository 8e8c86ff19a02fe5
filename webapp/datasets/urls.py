"""Dataset page URLs."""

from django.urls import path

from webapp.datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("<int:pk>/", views.dataset_detail, name="detail"),
    path("problems/<int:pk>/", views.problem_detail, name="problem"),
    path("import/", views.import_new, name="import"),
    path("imports/<int:pk>/", views.import_detail, name="import-detail"),
]
