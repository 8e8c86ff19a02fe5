"""Websocket routes: the chat (live run updates may join them later)."""

from django.urls import path

from webapp.chat.consumers import ChatConsumer

websocket_urlpatterns: list = [
    path("ws/chat/<int:session_id>/", ChatConsumer.as_asgi(), name="chat-socket"),
]
