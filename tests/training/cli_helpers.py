"""Helpers of the CLI tests: run `python -m training` in process, and check a one-line error."""


def run_cli(capsys, *argv):
    """(exit status, stdout, stderr) of `python -m training ARGV`, run in this process."""
    from training.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *fragments: str) -> None:
    """stderr is one `error: ...` line holding every fragment, and no traceback."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0]
