#!/usr/bin/env python3
"""CDK app: one stack per training run. Settings come from CDK context (cdk.json, -c key=value);
see training/cloud/core/settings.py. A bad setting stops synth with one line and exit status 2."""

import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from training.errors import ConfigError  # noqa: E402  (stdlib-only module)


def main() -> int:
    from stacks.spotgrade_stack import build_app

    try:
        app, _ = build_app()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
