"""The endpoint form: kind, URL and model, the key's variable name, roles, decoding defaults, prices."""

from __future__ import annotations

import json

from django import forms

from pipeline.decoding import DecodingError, validate_decoding
from webapp.endpoints.models import EndpointKind, ModelEndpoint


class ModelEndpointForm(forms.ModelForm):
    # Local model servers speak plain http; a URL typed without a scheme means that.
    base_url = forms.URLField(max_length=500, assume_scheme="http", help_text="OpenAI-compatible base URL, ending in /v1.")
    default_params = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), initial="{}",
        help_text='JSON, e.g. {"temperature": 0.7, "max_tokens": 512}',
    )
    adapters = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), initial="{}",
                               help_text='Local models only. JSON, e.g. {"my-lora": "/data/adapters/run-12"}')

    class Meta:
        model = ModelEndpoint
        fields = ["name", "kind", "base_url", "model_name", "api_key_env", "base_weights", "gguf_file", "adapters",
                  "as_student", "as_teacher", "as_assistant", "default_params", "max_concurrency",
                  "price_in_per_1k", "price_out_per_1k", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("default_params", "adapters"):
            self.initial[name] = json.dumps(getattr(self.instance, name) or {})

    def _json_object(self, name: str) -> dict:
        raw = self.cleaned_data.get(name) or "{}"
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"not valid JSON: {error.msg} at character {error.pos}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("must be a JSON object { ... }")
        return value

    def clean_default_params(self) -> dict:
        try:
            return validate_decoding(self._json_object("default_params"))
        except DecodingError as error:
            raise forms.ValidationError(str(error)) from None

    def clean_adapters(self) -> dict:
        adapters = self._json_object("adapters")
        if not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in adapters.items()):
            raise forms.ValidationError("adapters map names to folder paths, both strings")
        return adapters

    def clean(self):
        data = super().clean()
        if not any(data.get(role) for role in ("as_student", "as_teacher", "as_assistant")):
            raise forms.ValidationError("Choose at least one role: student, teacher or assistant.")
        if data.get("kind") == EndpointKind.LOCAL and not data.get("base_weights"):
            self.add_error("base_weights", "A local model needs its base weights.")
        if data.get("kind") == EndpointKind.OPENAI and data.get("adapters"):
            self.add_error("adapters", "Adapters are for local models; a remote endpoint serves what it serves.")
        return data
