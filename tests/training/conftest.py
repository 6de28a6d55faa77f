"""Shared fixtures of the training tests (a conftest, so a session fixture is built once per session)."""
from tests.training.trained_run import trained_run  # noqa: F401
