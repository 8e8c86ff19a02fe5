"""Template helpers: pick form fields by name."""

from django import template

register = template.Library()


@register.filter
def fields_named(form, names: str):
    """The bound fields ``names`` (comma-separated) of ``form``, in that order."""
    return [form[name.strip()] for name in names.split(",") if name.strip()]
