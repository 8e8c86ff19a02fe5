"""The lifecycle every job shares (gather, teach, train, exam): queued, running, done; progress, cost, logs, cancel, resume."""
