"""The command registry and the shared argument types."""
import argparse
import json

import pytest

from training import commands


def test_command_registers_once(monkeypatch):
    monkeypatch.setattr(commands, "COMMANDS", {})

    @commands.command("hello", "say hello")
    def hello(args):
        return 3

    registered = commands.COMMANDS["hello"]
    assert (registered.name, registered.help, registered.run, registered.passes_unknown) == \
        ("hello", "say hello", hello, False)
    with pytest.raises(ValueError, match="registered twice"):
        commands.command("hello", "again")(hello)


@pytest.mark.parametrize("convert, good, bad", [
    (commands.positive_int, [("1", 1), ("30", 30)], ["0", "-1", "abc", "1.5"]),
    (commands.non_negative_int, [("0", 0), ("5", 5)], ["-1", "x"]),
    (commands.fraction, [("0", 0.0), ("1", 1.0), ("0.25", 0.25)], ["1.5", "-0.1", "nan", "half"]),
    (commands.positive_float, [("0.5", 0.5)], ["0", "-2", "x"]),
    (commands.units_list, [("100,60", (100, 60)), ("16", (16,))], ["10,,5", "0", "a,b"]),
])
def test_argument_types(convert, good, bad):
    for text, value in good:
        assert convert(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            convert(text)


def test_aliases_run_the_command_and_are_hidden_from_help(monkeypatch, capsys):
    from training import cli

    monkeypatch.setattr(commands, "COMMANDS", {})
    monkeypatch.setattr(commands, "ALIASES", {})
    monkeypatch.setattr(cli, "COMMANDS", commands.COMMANDS)

    def _args(p):
        p.add_argument("--yes", action="store_true")

    @commands.command("cleanup", "remove leftovers", _args, aliases=("sweep",))
    def cleanup(args):
        print(f"cleanup yes={args.yes}")

    assert commands.command_named("sweep") is commands.command_named("cleanup") is commands.COMMANDS["cleanup"]
    assert cli.main(["sweep", "--yes"]) == 0 and capsys.readouterr().out == "cleanup yes=True\n"
    assert cli.main(["--help"]) == 0
    listed = capsys.readouterr().out
    assert "cleanup" in listed and "sweep" not in listed
    with pytest.raises(ValueError, match="'sweep' is registered twice"):
        commands.command("sweep", "again")(cleanup)


def test_print_json_is_one_line_of_strict_json(capsys):
    import math
    from datetime import datetime, timezone
    from pathlib import Path

    import numpy as np

    commands.print_json({"f1": np.float32(0.5), "n": np.int64(3), "rows": np.array([1, 2]), "nan": math.nan,
                         "path": Path("outputs/r1"), "at": datetime(2025, 1, 1, tzinfo=timezone.utc), 4: (True,)})
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {"f1": 0.5, "n": 3, "rows": [1, 2], "nan": None, "path": "outputs/r1",
                               "at": "2025-01-01T00:00:00+00:00", "4": [True]}


def test_json_stdout_sends_prints_to_stderr(capsys):
    parser = argparse.ArgumentParser()
    commands.add_json_flag(parser, "the status")
    assert "print the status as one JSON object on stdout" in parser.format_help()
    with commands.json_stdout(parser.parse_args(["--json"]).json):
        print("progress")
    with commands.json_stdout(False):
        print("result")
    assert capsys.readouterr() == ("result\n", "progress\n")
