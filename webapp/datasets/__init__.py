"""Datasets and their problems: import from benchmark files, split, browse and search."""
