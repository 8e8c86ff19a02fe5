"""Exams: statistics, LbT answer selection, SALAM retrieval, the contamination guard, exam prompts and config."""
