"""Admin for chat: conversations and their messages, read-mostly."""

from django.contrib import admin

from webapp.chat.models import ChatMessage, ChatSession


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    fields = ["role", "content", "status", "tokens", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "endpoint_name", "updated_at"]
    search_fields = ["title", "owner__username"]
    raw_id_fields = ["owner", "endpoint"]
    inlines = [ChatMessageInline]
