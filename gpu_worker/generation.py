"""Per-row decoding helpers: token sampling with each row's own settings, and incremental text with stop strings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Tokens of the prompt decoded in front of the first new token, so a tokenizer that drops a
# leading space at the start of a decode (SentencePiece) still gives the reply its space.
PROMPT_CONTEXT_TOKENS = 5


def sample_next_tokens(
    logits: torch.Tensor,
    temperatures: Sequence[float],
    top_ps: Sequence[float],
    generators: Sequence[torch.Generator | None],
) -> torch.Tensor:
    """One token per row of ``logits`` [rows, vocab]: argmax where the temperature is 0, else a draw.

    Each sampling row draws from its own generator, so its choices do not depend on which other
    rows share the batch: the same seed and prompt give the same text.
    """
    import torch

    tokens = logits.argmax(dim=-1)
    sampling = [i for i, temperature in enumerate(temperatures) if temperature > 0]
    if not sampling:
        return tokens
    index = torch.tensor(sampling, device=logits.device)
    scale = torch.tensor([temperatures[i] for i in sampling], device=logits.device, dtype=torch.float32)
    probs = torch.softmax(logits.index_select(0, index).float() / scale[:, None], dim=-1)
    top_p = torch.tensor([top_ps[i] for i in sampling], device=logits.device, dtype=torch.float32)
    if bool((top_p < 1.0).any()):
        probs = keep_top_p(probs, top_p)
    for row, i in enumerate(sampling):
        tokens[i] = torch.multinomial(probs[row], 1, generator=generators[i])[0]
    return tokens


def keep_top_p(probs: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Zero each row's least likely tokens outside the smallest set whose mass reaches its ``top_p``."""
    import torch

    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    sorted_probs[mass_before >= top_p[:, None]] = 0.0  # the most likely token always survives
    return torch.zeros_like(probs).scatter_(-1, order, sorted_probs)


class TextTracker:
    """The text of one row's new tokens, decoded a token at a time, cut at the first stop string.

    Decoding uses a short window (as vLLM's incremental detokenizer does) so each token costs the
    same however long the reply is; a window ending inside a multi-byte character waits for the
    next token. ``release()`` hands out new text for streaming but holds back a tail that could be
    the start of a stop string, so a client never sees text that is later cut.
    """

    def __init__(self, tokenizer, prompt_ids: Sequence[int], stop: Sequence[str] = ()):
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.ids = list(prompt_ids[-PROMPT_CONTEXT_TOKENS:])
        self.prefix_offset = 0
        self.read_offset = len(self.ids)
        self.text = ""
        self.released = 0
        self.stopped = False

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def push(self, token_id: int) -> bool:
        """Add one generated token; True when the text now contains a stop string (and was cut there)."""
        self.ids.append(token_id)
        return self._read(final=False)

    def finish(self) -> None:
        """Take in text still waiting for more bytes (a reply that ended mid-character)."""
        self._read(final=True)

    def _read(self, *, final: bool) -> bool:
        if self.stopped:
            return True
        prefix = self._decode(self.ids[self.prefix_offset : self.read_offset])
        full = self._decode(self.ids[self.prefix_offset :])
        if len(full) <= len(prefix) or (full.endswith("\ufffd") and not final):
            return False
        delta = full[len(prefix) :]
        self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        return self._append(delta)

    def _append(self, delta: str) -> bool:
        longest = max((len(s) for s in self.stop), default=0)
        start = max(0, len(self.text) - longest + 1)
        self.text += delta
        hits = [found for found in (self.text.find(s, start) for s in self.stop) if found >= 0]
        if hits:
            self.text = self.text[: min(hits)]
            self.stopped = True
        return self.stopped

    def release(self, *, final: bool = False) -> str:
        """New text not handed out before; unless ``final``, minus a tail that may begin a stop string."""
        end = len(self.text) if final or self.stopped else len(self.text) - self._stop_prefix_length()
        end = max(end, self.released)
        delta, self.released = self.text[self.released : end], end
        return delta

    def _stop_prefix_length(self) -> int:
        """Length of the longest end of the text that is a proper start of some stop string."""
        best = 0
        for stop in self.stop:
            for size in range(min(len(stop) - 1, len(self.text)), best, -1):
                if self.text.endswith(stop[:size]):
                    best = size
                    break
        return best
