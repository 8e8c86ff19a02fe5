"""Entry point for `python -m pipeline <command>`; the commands live in pipeline.cli."""

from pipeline.cli import main

raise SystemExit(main())
