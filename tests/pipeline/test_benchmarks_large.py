"""A 100 MB GSM8K file loads line by line, within a memory bound (about 3 s, so not marked slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).parents[2]
TARGET_BYTES = 100 * 1024 * 1024
LOAD_AND_MEASURE = """
import json, resource, sys, time
from pipeline.benchmarks import load
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
loaded = load(sys.argv[1])
seconds = time.perf_counter() - started
grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"count": len(loaded.records), "seconds": seconds, "grown_mib": grown_kib / 1024,
                  "last_gold": loaded.records[-1].gold_answer}))
"""


def write_large_gsm8k(path: Path) -> int:
    """Write about TARGET_BYTES of GSM8K lines with changing numbers; return how many lines."""
    template = json.dumps({
        "question": "A farmer has N sheep and buys N more. How many sheep are there now? " + "Think about it. " * 12,
        "answer": "There are N + N = <<N+N=M>>M sheep.\n" + "Each step is shown here. " * 8 + "\n#### M",
    }) + "\n"
    count, size = 0, 0
    with path.open("w") as handle:
        while size < TARGET_BYTES:
            lines = [template.replace("M", str(2 * n)).replace("N", str(n)) for n in range(count, count + 10_000)]
            chunk = "".join(lines)
            handle.write(chunk)
            count, size = count + len(lines), size + len(chunk)
    return count


def test_a_100_mb_json_lines_file_loads_streaming(tmp_path):
    path = tmp_path / "train.jsonl"
    count = write_large_gsm8k(path)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_MEASURE, str(path)], cwd=REPO_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    print(f"\n100 MB load: {measured}")
    assert measured["count"] == count
    assert measured["last_gold"] == str(2 * (count - 1))
    # The records keep about 90 MB of text; reading the file whole as bytes and str would add 200 MB more.
    assert measured["grown_mib"] < 2.5 * TARGET_BYTES / 2**20
