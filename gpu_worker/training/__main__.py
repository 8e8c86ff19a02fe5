"""Run one training spec in this process: ``python -m gpu_worker.training SPEC.json`` (events on stdout)."""

import sys

from gpu_worker.training.runner import main

sys.exit(main(sys.argv[1:]))
