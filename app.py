#!/usr/bin/env python3
"""CDK app: one stack per training run. Settings come from CDK context (cdk.json, -c key=value);
see training/cloud/core/settings.py. A bad setting (an unknown key, a bad value, trainArgs that
`python -m training train` refuses) stops synth with one line and exit status 2, never a traceback."""

import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from training.errors import ConfigError  # noqa: E402  (stdlib-only module)


def main() -> int:
    from stacks.spotgrade_stack import build_app

    try:
        # The whole context as the CLI passed it (read_deploy_settings): unknown keys and trainArgs refused, and
        # gitRef resolved to the commit the instances check out, before anything is written.
        app, _ = build_app()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
