"""`train`'s flags: parsed alone (as the runner does) and into a TrainConfig."""
import pytest

from training.errors import ConfigError
from training.train_flags import parse_train_flags, train_config_from_args


def test_gpu_flags_reach_the_train_config():
    config = train_config_from_args(parse_train_flags(["--mixed-precision", "--strategy", "mirrored",
                                                       "--batch-size", "2048"]))
    assert config.mixed_precision is True and config.strategy == "mirrored" and config.batch_size == 2048
    assert train_config_from_args(parse_train_flags([])).strategy is None


def test_the_cli_and_the_runner_parse_the_same_flags():
    from training.cli import build_parser

    flags = ["--epochs", "3", "--hidden-units", "64,32", "--preset", "tuned", "--split", "time"]
    from_cli = vars(build_parser().parse_args(["train", *flags]))
    assert vars(parse_train_flags(flags)) == {k: v for k, v in from_cli.items() if k != "command"}


def test_preset_overrides_the_network_but_keeps_the_optimiser_flags():
    config = train_config_from_args(parse_train_flags(["--preset", "reference", "--learning-rate", "0.01"]))
    assert config.model.learning_rate == 0.01 and config.model.max_norm == 3.0


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "python -m training train: error: argument --epochs: must be a positive integer, got 0"),
    (["--bogus"], "python -m training train: error: unrecognized arguments: --bogus"),
])
def test_bad_flags_are_one_line_config_errors(flags, message):
    with pytest.raises(ConfigError) as info:
        parse_train_flags(flags)
    assert str(info.value) == message
