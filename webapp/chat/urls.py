"""Chat page URLs (the websocket route is in webapp/routing.py)."""

from django.urls import path

from webapp.chat import views

app_name = "chat"
urlpatterns = [
    path("", views.chat_list, name="list"),
    path("new/", views.chat_new, name="new"),
    path("explain/", views.explain, name="explain"),
    path("<int:pk>/", views.chat_session, name="session"),
]
