"""GPU-side Celery worker: model serving, batch generation and training (never imports webapp)."""
