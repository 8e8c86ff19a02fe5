"""Model endpoints: every model Errata can call (OpenAI-compatible URLs and local models on a gpu_worker)."""
