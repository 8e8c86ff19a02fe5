"""Stored, versioned teacher prompts: the defaults become version 1; a researcher's edit is a new version."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max

from pipeline.teaching import DEFAULT_TEMPLATES
from pipeline.teaching import PromptTemplate as TemplateText
from pipeline.teaching import validate_template
from webapp.teach.models import PromptTemplate


def template_ensure_defaults() -> None:
    """Store Errata's own prompts as version 1 of each template (once)."""
    for name, template in DEFAULT_TEMPLATES.items():
        if not PromptTemplate.objects.filter(name=name).exists():
            try:
                with transaction.atomic():
                    PromptTemplate.objects.create(name=name, method=template.method, version=1, system=template.system,
                                                  user=template.user, note="Errata's default")
            except IntegrityError:
                pass  # another process stored it first


def template_for(name: str, version: int | None = None) -> PromptTemplate:
    """The pinned version of a template, or its latest."""
    template_ensure_defaults()
    rows = PromptTemplate.objects.filter(name=name)
    return rows.get(version=version) if version else rows.order_by("-version").first()


def as_text(row: PromptTemplate) -> TemplateText:
    default = DEFAULT_TEMPLATES[row.name]
    return TemplateText(name=row.name, method=row.method, system=row.system, user=row.user,
                        placeholders=default.placeholders)


@transaction.atomic
def template_new_version(*, name: str, system: str, user_text: str, note: str = "", user=None) -> PromptTemplate:
    """Save an edited prompt as the next version; it is checked first (unknown placeholders are refused)."""
    if name not in DEFAULT_TEMPLATES:
        raise ValueError(f"unknown template {name!r}")
    default = DEFAULT_TEMPLATES[name]
    validate_template(TemplateText(name=name, method=default.method, system=system, user=user_text,
                                   placeholders=default.placeholders))
    template_ensure_defaults()
    latest = PromptTemplate.objects.select_for_update().filter(name=name).aggregate(v=Max("version"))["v"] or 0
    return PromptTemplate.objects.create(name=name, method=default.method, version=latest + 1, system=system,
                                         user=user_text, note=note, created_by=user)
