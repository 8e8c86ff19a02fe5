"""Continuous batching: the rows decoding together on one model/adapter, one forward pass per step.

A ``Batch`` keeps one KV cache for all its rows, left-padded to a common length with an
attention mask, and explicit position ids so padding never shifts a row's positions. New rows are
prefilled on their own and merged into the running cache between steps, so a short request that
arrives while a long one is decoding joins it instead of waiting for it. Finished and cancelled
rows leave the cache at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gpu_worker.generation import TextTracker, sample_next_tokens

if TYPE_CHECKING:
    import torch

    from gpu_worker.engine import GenerationParams
    from gpu_worker.loading import LoadedModel


@dataclass(eq=False)
class Row:
    """One sequence being generated: one of a request's ``n`` samples."""

    request: Any  # engine's request: .cancelled, .streaming, .on_delta(row, text), .on_finished(row)
    index: int
    prompt_ids: list[int]
    params: GenerationParams
    generator: torch.Generator | None
    tracker: TextTracker
    completion_tokens: int = 0
    finish_reason: str | None = None
    position: int = field(init=False)

    def __post_init__(self):
        self.position = len(self.prompt_ids)

    def advance(self, token: int, loaded: LoadedModel) -> None:
        """Take one sampled token; set ``finish_reason`` when the row is done."""
        self.completion_tokens += 1
        if token in loaded.eos_ids and not self.params.ignore_eos:
            self.finish_reason = "stop"
        elif self.tracker.push(token):
            self.finish_reason = "stop"
        elif self.completion_tokens >= self.params.max_tokens or self.position + 1 >= loaded.context_length:
            self.finish_reason = "length"
        if self.finish_reason:
            self.tracker.finish()


class Batch:
    """Rows that decode together with one model and adapter."""

    def __init__(self, loaded: LoadedModel, adapter: str | None):
        self.loaded = loaded
        self.adapter = adapter
        self.rows: list[Row] = []
        self.cache = None
        self.mask = None  # [rows, cache length] 1 where a cache column holds a real token of that row
        self.positions = None  # [rows] position id of each row's next token
        self.next_logits = None  # [rows, vocab] logits for each row's next token
        self.mergeable = True

    def can_admit(self) -> bool:
        """Whether new rows can join now (caches other than plain dynamic ones only start empty)."""
        return not self.rows or self.mergeable

    def admit(self, rows: list[Row]) -> None:
        """Prefill ``rows`` and merge them into the running batch."""
        import torch

        pad = self.loaded.tokenizer.pad_token_id or 0
        width = max(len(row.prompt_ids) for row in rows)
        ids = [[pad] * (width - len(row.prompt_ids)) + row.prompt_ids for row in rows]
        mask = [[0] * (width - len(row.prompt_ids)) + [1] * len(row.prompt_ids) for row in rows]
        device = self.loaded.device
        ids, mask = torch.tensor(ids, device=device), torch.tensor(mask, device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        self.loaded.activate(self.adapter)
        out = self.loaded.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        lengths = torch.tensor([len(row.prompt_ids) for row in rows], device=device)
        self._merge(out.past_key_values, mask, lengths, out.logits[:, -1, :].float())
        self.rows.extend(rows)

    def step(self) -> int:
        """Drop cancelled rows, pick every row's next token, hand out text, run the next forward pass.

        Returns how many rows took part.
        """
        import torch

        self._keep([i for i, row in enumerate(self.rows) if not row.request.cancelled])
        if not self.rows:
            return 0
        taking_part = len(self.rows)
        tokens = self._sample()
        for row, token in zip(self.rows, tokens.tolist()):
            row.advance(token, self.loaded)
            if row.request.streaming:
                delta = row.tracker.release(final=row.finish_reason is not None)
                if delta:
                    row.request.on_delta(row, delta)
            if row.finish_reason:
                row.request.on_finished(row)
        keep = [i for i, row in enumerate(self.rows) if row.finish_reason is None]
        if len(keep) < len(self.rows):
            tokens = tokens[torch.tensor(keep, dtype=torch.long, device=tokens.device)]
            self._keep(keep)
        if self.rows:
            self._decode(tokens)
        return taking_part

    def _sample(self) -> torch.Tensor:
        logits = self.next_logits
        if self.loaded.suppress_ids:
            logits[:, list(self.loaded.suppress_ids)] = float("-inf")
        eos = list(self.loaded.eos_ids)
        for i, row in enumerate(self.rows):
            if row.params.ignore_eos and eos:
                logits[i, eos] = float("-inf")
        return sample_next_tokens(
            logits,
            [row.params.temperature for row in self.rows],
            [row.params.top_p for row in self.rows],
            [row.generator for row in self.rows],
        )

    def _decode(self, tokens: torch.Tensor) -> None:
        import torch

        mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=1)
        self.loaded.activate(self.adapter)
        out = self.loaded.model(
            input_ids=tokens[:, None],
            attention_mask=mask,
            position_ids=self.positions[:, None],
            past_key_values=self.cache,
            use_cache=True,
        )
        self.cache = out.past_key_values
        self.mask = mask
        self.positions = self.positions + 1
        self.next_logits = out.logits[:, -1, :].float()
        for row in self.rows:
            row.position += 1

    def _merge(self, cache, mask, positions, logits) -> None:
        import torch
        import torch.nn.functional as F

        if not self.rows:
            self.cache, self.mask, self.positions, self.next_logits = cache, mask, positions, logits
            self.mergeable = _is_plain_dynamic(cache)
            return
        width = max(self.mask.shape[1], mask.shape[1])

        def pad_kv(t):  # [rows, heads, length, dim] -> left-padded to width
            return F.pad(t, (0, 0, width - t.shape[-2], 0))

        for old, new in zip(self.cache.layers, cache.layers):
            old.keys = torch.cat([pad_kv(old.keys), pad_kv(new.keys)])
            old.values = torch.cat([pad_kv(old.values), pad_kv(new.values)])
        self.mask = torch.cat([F.pad(self.mask, (width - self.mask.shape[1], 0)), F.pad(mask, (width - mask.shape[1], 0))])
        self.positions = torch.cat([self.positions, positions])
        self.next_logits = torch.cat([self.next_logits, logits])

    def _keep(self, keep: list[int]) -> None:
        """Keep only the rows at ``keep``; drop cache columns no remaining row uses."""
        import torch

        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in keep]
        if not self.rows:
            self.cache = self.mask = self.positions = self.next_logits = None
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.positions, self.next_logits = self.mask[index], self.positions[index], self.next_logits[index]
        unused = int(self.mask.any(dim=0).long().argmax())  # leading columns that are padding in every row
        if unused and self.mergeable:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., unused:, :], layer.values[..., unused:, :]
            self.mask = self.mask[:, unused:]


def _is_plain_dynamic(cache) -> bool:
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)
