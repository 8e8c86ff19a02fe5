"""Template filters for exam pages."""
