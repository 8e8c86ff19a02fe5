"""Errata template tags."""
