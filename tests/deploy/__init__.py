"""Errata deployed as separate processes: web, default and gpu workers, a model server, on PostgreSQL and Redis."""
