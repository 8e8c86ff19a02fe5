"""Training runs on a GPU worker: the Celery task, the runner process it launches, and what they share."""
