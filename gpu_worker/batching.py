"""Continuous batching: a worker thread that steps batches of rows, one forward pass per batch and step.

A ``Batch`` keeps one KV cache for all its rows, left-padded to a common length with an
attention mask, and explicit position ids so padding never shifts a row's positions. New rows are
prefilled on their own and merged into the running cache between steps, so a short request that
arrives while a long one is decoding joins it instead of waiting for it. Finished and cancelled
rows leave the cache at once. The ``Scheduler`` owns the models on its thread, keeps one batch per
(model, adapter) and steps them in turn, so adapters never mix within a forward pass and no model
waits for another's batch to finish.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gpu_worker.generation import TextTracker, sample_next_tokens

if TYPE_CHECKING:
    import torch

    from gpu_worker.engine import GenerationParams
    from gpu_worker.loading import LoadedModel

log = logging.getLogger(__name__)


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
        out = self.loaded.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1
        )
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


class Scheduler:
    """The generation worker thread: takes submitted rows, batches them per (model, adapter), steps them."""

    def __init__(
        self, models: dict[str, LoadedModel], *, max_batch_size: int, batch_window_s: float, num_threads: int | None
    ):
        self._models = models
        self.max_batch_size = max_batch_size
        self.batch_window_s = batch_window_s
        self._num_threads = num_threads
        self._queue: queue.Queue = queue.Queue()
        self._pending: dict[tuple, deque[Row]] = defaultdict(deque)
        self._batches: dict[tuple, Batch] = {}
        self._closing: BaseException | None = None
        self._stats = {"requests": 0, "steps": 0, "rows_finished": 0, "rows_cancelled": 0, "max_rows_in_step": 0}
        self._worker = threading.Thread(target=self._work, name="errata-generation", daemon=True)
        self._worker.start()

    def submit(self, rows: list[Row]) -> None:
        """Queue one request's rows (all with the same ``request.key``); safe from any thread."""
        self._stats["requests"] += 1
        self._queue.put(rows)

    def stats(self) -> dict[str, int]:
        snapshot = dict(self._stats)
        rows = [row for batch in list(self._batches.values()) for row in list(batch.rows)]
        snapshot["active_rows"] = sum(row.finish_reason is None and not row.request.cancelled for row in rows)
        snapshot["pending_rows"] = sum(len(waiting) for waiting in list(self._pending.values()))
        return snapshot

    def close(self, error: BaseException) -> None:
        """Stop the thread; every unfinished request gets ``error``."""
        if self._closing is not None:
            return
        self._closing = error
        self._queue.put(None)
        self._worker.join(timeout=30)

    def _work(self) -> None:
        import torch

        if self._num_threads:
            torch.set_num_threads(self._num_threads)
        with torch.inference_mode():
            while self._collect():
                self._admit()
                self._step_all()
        self._fail_all(self._closing or RuntimeError("the generation worker stopped"))

    def _collect(self) -> bool:
        """Move submitted rows to pending; when idle, wait for work and then a batch window. False: stop."""
        busy = bool(self._batches) or any(self._pending.values())
        try:
            if not busy:
                if not self._take(self._queue.get()):
                    return False
                deadline = time.monotonic() + self.batch_window_s
                while sum(map(len, self._pending.values())) < self.max_batch_size:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._take(self._queue.get(timeout=left)):
                        break
            while True:
                if not self._take(self._queue.get_nowait()):
                    return False
        except queue.Empty:
            pass
        return self._closing is None

    def _take(self, rows: list[Row] | None) -> bool:
        if rows is None:
            return False
        self._pending[rows[0].request.key].extend(rows)
        return True

    def _admit(self) -> None:
        """Move waiting rows into their batch, up to ``max_batch_size`` rows a batch."""
        for key, waiting in self._pending.items():
            batch = self._batches.get(key) or Batch(self._models[key[0]], key[1])
            if not waiting or not batch.can_admit():
                continue
            taken = []
            while waiting and len(batch.rows) + len(taken) < self.max_batch_size:
                row = waiting.popleft()
                if row.request.cancelled:
                    self._stats["rows_cancelled"] += 1
                else:
                    taken.append(row)
            if not taken:
                continue
            try:
                batch.admit(taken)
            except Exception as error:
                log.exception("prefill failed")
                _fail({row.request for row in taken}, error)
                continue
            self._batches[key] = batch

    def _step_all(self) -> None:
        for key, batch in list(self._batches.items()):
            cancelled = sum(row.request.cancelled for row in batch.rows)
            try:
                rows = batch.step()
            except Exception as error:
                log.exception("decoding step failed")
                _fail({row.request for row in batch.rows}, error)
                del self._batches[key]
                continue
            stats = self._stats
            stats["steps"] += 1
            stats["rows_cancelled"] += cancelled
            stats["rows_finished"] += rows - len(batch.rows)
            stats["max_rows_in_step"] = max(stats["max_rows_in_step"], rows)
            if not batch.rows:
                del self._batches[key]

    def _fail_all(self, error: BaseException) -> None:
        rows = [row for batch in self._batches.values() for row in batch.rows]
        rows += [row for waiting in self._pending.values() for row in waiting]
        while True:
            try:
                rows += self._queue.get_nowait() or []
            except queue.Empty:
                break
        _fail({row.request for row in rows}, error)
        self._batches.clear()
        self._pending.clear()


def _fail(requests, error: BaseException) -> None:
    for request in requests:
        if not request.cancelled:
            request.on_error(error)
