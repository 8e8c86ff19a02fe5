"""Errata's test suite; it mirrors the code: tests/webapp, tests/pipeline, tests/gpu_worker."""
