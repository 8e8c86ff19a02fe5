"""Runtime LoRA loads and unloads for the batching worker: queued from any thread, made between decoding steps."""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from gpu_worker.batching import Row, Scheduler
from gpu_worker.errors import UnknownModelError


@dataclass(eq=False)
class AdapterChange:
    """A load or unload for the worker: ``step()`` runs between decoding steps until it returns True."""

    adapter: str
    step: Callable[[], bool]
    future: Future = field(default_factory=Future)


class AdapterScheduler(Scheduler):
    """The batching worker, which also loads and unloads adapters between decoding steps.

    Changes run in the order they arrive; one waits while an earlier change to the same adapter
    name is unfinished (an unload waiting for its rows), so "unload, then load again" holds.
    """

    _WAKE_UP: list = []  # put on the row queue so an idle worker looks at its changes

    def __init__(self, *args, **kwargs):
        self._inbox: queue.SimpleQueue[AdapterChange] = queue.SimpleQueue()
        self._changes: list[AdapterChange] = []  # the worker thread's own
        super().__init__(*args, **kwargs)

    def change(self, change: AdapterChange) -> Future:
        """Queue ``change`` (any thread); its future ends when the worker has made it, or failed to."""
        self._inbox.put(change)
        self._queue.put(self._WAKE_UP)
        if self._closing is not None:  # the worker may be gone already: nobody else would answer
            _fail_changes(_drain(self._inbox), self._closing)
        return change.future

    def has_rows(self, key: tuple) -> bool:
        """Whether rows for (base, adapter) are decoding or waiting (worker thread)."""
        batch = self._batches.get(key)
        return bool(batch and batch.rows) or bool(self._pending.get(key))

    def _collect(self) -> bool:
        # Before waiting for rows: an unload whose last row just finished completes now. Rows routed to
        # an adapter just before its unload completed are refused when taken (``_take``).
        self._apply_changes()
        return super()._collect()

    def _take(self, rows: list[Row] | None) -> bool:
        if rows is self._WAKE_UP:
            return True
        if rows:
            base, adapter = rows[0].request.key
            if adapter is not None and adapter not in self._models[base].adapters:
                # Routed just before an unload finished: refuse as if the request had come after it.
                rows[0].request.on_error(UnknownModelError(f"The model `{adapter}` does not exist."))
                return True
        return super()._take(rows)

    def _apply_changes(self) -> None:
        self._changes += _drain(self._inbox)
        waiting, blocked = [], set()
        for change in self._changes:
            if change.adapter in blocked or not self._advance(change):
                blocked.add(change.adapter)
                waiting.append(change)
        self._changes = waiting

    def _advance(self, change: AdapterChange) -> bool:
        """One go at ``change``; True once it is over (made, failed or cancelled before it started)."""
        if not change.future.running() and not change.future.set_running_or_notify_cancel():
            return True
        try:
            if not change.step():
                return False
        except Exception as error:
            change.future.set_exception(error)
        else:
            change.future.set_result(None)
        return True

    def _fail_all(self, error: BaseException) -> None:
        super()._fail_all(error)
        changes, self._changes = self._changes + _drain(self._inbox), []
        _fail_changes(changes, error)


def _fail_changes(changes: list[AdapterChange], error: BaseException) -> None:
    """End each change with ``error`` (each is in one list only: taken from the inbox by one thread)."""
    for change in changes:
        if change.future.running() or change.future.set_running_or_notify_cancel():
            change.future.set_exception(error)


def _drain(inbox: queue.SimpleQueue) -> list:
    items = []
    while True:
        try:
            items.append(inbox.get_nowait())
        except queue.Empty:
            return items
