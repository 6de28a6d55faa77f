"""`train`'s flags: parsed alone (as the runner does) and into a TrainConfig."""
import pytest

from training.errors import ConfigError
from training.train_flags import parse_train_flags, train_config_from_args


def test_gpu_flags_reach_the_train_config():
    config = train_config_from_args(parse_train_flags(["--mixed-precision", "--strategy", "mirrored",
                                                       "--batch-size", "2048"]))
    assert config.precision == "mixed_float16" and config.strategy == "mirrored" and config.batch_size == 2048
    assert train_config_from_args(parse_train_flags([])).strategy is None


def test_precision_is_float32_unless_a_flag_says_otherwise():
    def chosen(*flags):
        return train_config_from_args(parse_train_flags(list(flags))).precision

    assert chosen() == chosen("--data", "loans.csv") == "float32"   # bfloat16 cost the tuned model F1
    assert chosen("--data", "loans.csv", "--precision", "auto") == "auto"
    assert chosen("--precision", "mixed_bfloat16") == "mixed_bfloat16"
    assert chosen("--mixed-precision", "--precision", "mixed_float16") == "mixed_float16"
    with pytest.raises(ConfigError, match="--mixed-precision means --precision mixed_float16, not float32"):
        chosen("--mixed-precision", "--precision", "float32")
    with pytest.raises(ConfigError, match="--precision: invalid choice: 'float16'"):
        parse_train_flags(["--precision", "float16"])


def test_the_cli_and_the_runner_parse_the_same_flags():
    from training.cli import build_parser

    flags = ["--epochs", "3", "--hidden-units", "64,32", "--preset", "tuned", "--split", "time"]
    from_cli = vars(build_parser().parse_args(["train", *flags]))
    cli_only = ("command", "force", "json")  # train --force and --json are the CLI's (the runner resumes its run)
    assert vars(parse_train_flags(flags)) == {k: v for k, v in from_cli.items() if k not in cli_only}


def test_no_baselines_reaches_the_train_config():
    assert train_config_from_args(parse_train_flags(["--no-baselines"])).baselines is False
    assert train_config_from_args(parse_train_flags([])).baselines is True


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


def test_feature_set_choices_are_the_feature_sets():
    from training.features import FEATURE_SETS
    from training.train import MIN_ROWS
    from training.train_flags import FEATURE_SET_NAMES, MIN_SAMPLE_ROWS

    assert FEATURE_SET_NAMES == tuple(FEATURE_SETS)
    assert MIN_SAMPLE_ROWS == MIN_ROWS
    with pytest.raises(ConfigError, match="argument --features: invalid choice: '?bogus"):
        parse_train_flags(["--features", "bogus"])


def test_help_is_an_unknown_flag_here_and_prints_nothing(capsys):
    """trainArgs='--help' must not print help and exit (synth and the runner parse with this)."""
    for flag in ("--help", "-h"):
        with pytest.raises(ConfigError, match=f"unrecognized arguments: {flag}$"):
            parse_train_flags([flag])
    assert capsys.readouterr() == ("", "")


def test_parsing_the_flags_imports_nothing_heavy():
    """Synth checks trainArgs with this parser, and the stacks never import TensorFlow (nor pandas)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, training.train_flags as t; t.parse_train_flags(['--epochs', '3']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'tensorflow', 'keras', 'pandas', 'numpy', 'pyarrow', 'sklearn', 'boto3', 'aws_cdk'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout == "[]\n"


def test_cache_flags_reach_the_train_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert train_config_from_args(parse_train_flags([])).cache_dir == tmp_path / "xdg" / "spotgrade"
    assert train_config_from_args(parse_train_flags(["--cache-dir", str(tmp_path)])).cache_dir == tmp_path
    assert train_config_from_args(parse_train_flags(["--no-cache"])).cache_dir is None
    with pytest.raises(ConfigError, match="argument --no-cache: not allowed with argument --cache-dir$"):
        parse_train_flags(["--cache-dir", "c", "--no-cache"])
