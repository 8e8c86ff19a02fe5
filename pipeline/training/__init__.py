"""Training runs as plain data: the run configuration, the training-data builders and the launch commands."""
