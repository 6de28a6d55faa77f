"""Stack fixtures: each variant of the app is synthesized once and its templates shared (helpers: helpers.py)."""

from __future__ import annotations

import pytest

from tests.stacks.helpers import CONTEXT, AppSynth, Synth, synth


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> AppSynth:
    """The realistic run, with cdk-nag's AwsSolutionsChecks live: the shared stack and the run stack."""
    return synth(tmp_path_factory.mktemp("cdk-default"), CONTEXT)


@pytest.fixture(scope="session")
def shared_synth(default_synth: AppSynth) -> Synth:
    return default_synth.shared


@pytest.fixture(scope="session")
def run_synth(default_synth: AppSynth) -> Synth:
    return default_synth.run
