"""Exams: a student on held-out problems (plain, with SALAM's study assistant, or LbT selection), results and comparisons."""
