"""Example suite run by the tox client-version envs (see tox.ini and the README recipe)."""
