"""Gather: the student answers problems; every answer is an Attempt, scored; mistakes are the wrong ones."""
