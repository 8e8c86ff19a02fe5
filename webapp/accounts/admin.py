"""Django admin for users, with the role shown and editable."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from webapp.accounts.models import User


@admin.register(User)
class ErrataUserAdmin(UserAdmin):
    list_display = ("username", "email", "role", "is_active", "last_login")
    list_filter = ("role", "is_active")
    fieldsets = UserAdmin.fieldsets + (("Errata", {"fields": ("role",)}),)
    add_fieldsets = UserAdmin.add_fieldsets + (("Errata", {"fields": ("role",)}),)
