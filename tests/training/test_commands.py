"""The command registry and the shared argument types."""
import argparse

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
    (commands.positive_int, [("1", 1), ("30", 30)], ["0", "-1"]),
    (commands.non_negative_int, [("0", 0), ("5", 5)], ["-1"]),
    (commands.fraction, [("0", 0.0), ("1", 1.0), ("0.25", 0.25)], ["1.5", "-0.1"]),
    (commands.positive_float, [("0.5", 0.5)], ["0", "-2"]),
    (commands.units_list, [("100,60", (100, 60)), ("16", (16,))], ["10,,5", "0", "a,b"]),
])
def test_argument_types(convert, good, bad):
    for text, value in good:
        assert convert(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            convert(text)
