"""Websocket routes (chat and live run updates arrive in later issues)."""

websocket_urlpatterns: list = []
