"""ModelEndpoint: how to reach one model, which roles it may play, what it costs; keys stay in the environment."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse

from pipeline.models import EndpointConfig

ENV_VAR_NAME = RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", "Give the NAME of an environment variable, like OPENAI_API_KEY.")


class EndpointKind(models.TextChoices):
    OPENAI = "openai", "OpenAI-compatible URL"
    LOCAL = "local", "Local model on a gpu_worker"


class ModelEndpoint(models.Model):
    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=10, choices=EndpointKind.choices, default=EndpointKind.OPENAI)
    base_url = models.URLField(max_length=500, help_text="OpenAI-compatible base URL, ending in /v1.")
    model_name = models.CharField(max_length=200, help_text="The model name sent with each request.")
    api_key_env = models.CharField(
        max_length=100, blank=True, validators=[ENV_VAR_NAME],
        help_text="Name of the environment variable that holds the API key. The key itself is never stored.",
    )
    # A local model: what the gpu_worker loads to serve it.
    base_weights = models.CharField(max_length=500, blank=True, help_text="HF folder, GGUF file, or 'packaged:smollm2'.")
    gguf_file = models.CharField(max_length=200, blank=True)
    adapters = models.JSONField(default=dict, blank=True, help_text="LoRA adapters: served name -> folder.")
    as_student = models.BooleanField("student", default=True)
    as_teacher = models.BooleanField("teacher", default=False)
    as_assistant = models.BooleanField("assistant", default=False)
    default_params = models.JSONField(default=dict, blank=True, help_text="Default decoding settings.")
    max_concurrency = models.PositiveIntegerField(default=8, validators=[MinValueValidator(1)])
    price_in_per_1k = models.DecimalField("price per 1k input tokens (USD)", max_digits=10, decimal_places=6, default=0)
    price_out_per_1k = models.DecimalField("price per 1k output tokens (USD)", max_digits=10, decimal_places=6, default=0)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True)
    last_check_message = models.TextField(blank=True)
    last_check_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # Filled by a model server's announcements (gpu_worker/announce.py): where it runs and when it last said so.
    announced_by = models.CharField(max_length=255, blank=True, help_text="Host of the model server that announced it.")
    announced_gpus = models.JSONField(default=list, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("endpoints:detail", args=[self.pk])

    @property
    def roles(self) -> list[str]:
        return [role for role, on in (("student", self.as_student), ("teacher", self.as_teacher),
                                      ("assistant", self.as_assistant)) if on]

    @property
    def gpu_summary(self) -> str:
        """The announcing server's GPUs in a few words, e.g. "2 × NVIDIA H100 80GB HBM3"."""
        names = [gpu.get("name", "?") for gpu in self.announced_gpus if isinstance(gpu, dict)]
        return ", ".join(f"{names.count(name)} × {name}" for name in dict.fromkeys(names))

    def to_config(self) -> EndpointConfig:
        """What the pipeline's model client needs; the key is read from the environment at call time."""
        return EndpointConfig(
            name=self.name, base_url=self.base_url, model=self.model_name, api_key_env=self.api_key_env,
            max_concurrency=self.max_concurrency, timeout_s=settings.ERRATA_MODEL_TIMEOUT_S,
            max_retries=settings.ERRATA_MODEL_MAX_RETRIES, price_in_per_1k=float(self.price_in_per_1k),
            price_out_per_1k=float(self.price_out_per_1k), default_params=dict(self.default_params),
        )
