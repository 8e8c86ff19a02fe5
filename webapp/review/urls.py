"""Review page URLs."""

from django.urls import path

from webapp.review import views

app_name = "review"
urlpatterns = [
    path("", views.queue_list, name="queues"),
    path("queues/<int:pk>/", views.queue_detail, name="queue"),
    path("queues/<int:pk>/bulk/", views.queue_bulk, name="bulk"),
    path("queues/<int:pk>/export/", views.queue_export, name="export"),
    path("queues/<int:pk>/work/", views.review_work, name="work"),
    path("items/<int:pk>/", views.review_item, name="item"),
    path("items/<int:pk>/diff/", views.review_diff, name="diff"),
]
