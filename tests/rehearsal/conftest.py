"""The rehearsal's session fixture: its world (tests/rehearsal/harness.py) set up once for every scenario."""
from __future__ import annotations

import pytest

from tests.rehearsal.git_server import HttpsGitServer, snapshot_repo, write_git_config
from tests.rehearsal.harness import BRANCH, CPU_REQUIREMENTS, REPO, WHEELHOUSE_CACHE, Rehearsal
from tests.rehearsal.package_index import PackageIndex, build_wheelhouse
from tests.training.cloud.moto_server import moto_endpoint  # noqa: F401 (the shared moto server fixture)


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str):  # noqa: F811 (the imported fixture)
    work = tmp_path_factory.mktemp("rehearsal")
    bare = work / "git" / "spotgrade.git"
    snapshot_repo(REPO, bare, BRANCH)
    wheelhouse = build_wheelhouse([f"-r {REPO / CPU_REQUIREMENTS}"], WHEELHOUSE_CACHE)
    with HttpsGitServer(bare.parent) as git, PackageIndex(wheelhouse) as index:
        yield Rehearsal(moto_endpoint, git, write_git_config(work / "gitconfig", git), index, work)
