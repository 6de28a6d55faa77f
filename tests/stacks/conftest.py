"""Stack fixtures: each variant of the stack is synthesized once and its template shared (helpers: helpers.py)."""

from __future__ import annotations

import pytest

from tests.stacks.helpers import CONTEXT, Synth, synth


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The realistic run, with cdk-nag's AwsSolutionsChecks live."""
    return synth(tmp_path_factory.mktemp("cdk-default"), CONTEXT)
