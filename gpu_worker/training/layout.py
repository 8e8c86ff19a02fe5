"""The output folder of a training run: checkpoints, the STOP file, final weights, the manifest and the log.

```
output_dir/spec.json                      the spec the task was given
output_dir/train.log                      the runner's log
output_dir/STOP                           created by the web side to cancel
output_dir/checkpoints/checkpoint-<step>/ Trainer checkpoints; complete once trainer_state.json is written
output_dir/final/adapter|model|merged/    the result
output_dir/final/manifest.json            written last, atomically: its presence means the run finished
```
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"  # the Trainer writes it after the weights, optimizer and RNG states


@dataclass(frozen=True)
class RunFolder:
    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "spec.json"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def stop(self) -> Path:
        return self.root / "STOP"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def final(self) -> Path:
        return self.root / "final"

    @property
    def manifest(self) -> Path:
        return self.final / "manifest.json"

    @property
    def lock(self) -> Path:
        return self.root / ".runner.lock"

    def stop_requested(self) -> bool:
        return self.stop.exists()

    def newest_checkpoint(self) -> Path | None:
        return newest_complete_checkpoint(self.checkpoints)


def checkpoint_step(path: Path) -> int | None:
    match = CHECKPOINT_NAME.match(path.name)
    return int(match.group(1)) if match else None


def newest_complete_checkpoint(folder: Path) -> Path | None:
    """The checkpoint with the highest step whose trainer_state.json is readable; half-written ones are ignored."""
    if not folder.is_dir():
        return None
    complete = [path for path in folder.iterdir()
                if path.is_dir() and checkpoint_step(path) is not None and _state_is_readable(path / TRAINER_STATE)]
    return max(complete, key=checkpoint_step, default=None)


def _state_is_readable(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError):
        return False


def path_or_none(path: Path | None) -> str | None:
    """A path for JSON: its text, or null."""
    return None if path is None else str(path)


def write_json_atomically(path: Path, data: dict) -> None:
    """Write to a temporary file beside ``path`` and rename it into place: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, indent=2, default=str)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
