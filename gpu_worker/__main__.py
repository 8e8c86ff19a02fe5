"""Entry point: `python -m gpu_worker serve ...` (see gpu_worker/cli.py)."""

from gpu_worker.cli import main

raise SystemExit(main())
