"""Users, roles (admin, researcher, annotator) and the checks every page and endpoint uses."""
