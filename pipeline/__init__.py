"""Errata's plain-Python core: benchmarks, scoring, prompts, model clients and methods (never imports Django)."""
