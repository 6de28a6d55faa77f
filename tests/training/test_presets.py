"""`train --preset` and the preset a run gets without one: flags -> TrainConfig (nothing trains here)."""
import pytest

from training.model import MODEL_PRESETS, ModelConfig
from training.presets import DATA_DEFAULT, PRESETS, SAMPLE_DEFAULT, choose_preset
from training.train import TrainConfig
from training.train_flags import parse_train_flags, train_config_from_args

DATA = ["--data", "loans.csv"]


def config_of(*flags: str) -> TrainConfig:
    return train_config_from_args(parse_train_flags(list(flags)))


def test_every_preset_names_a_model_preset():
    assert {p.model for p in PRESETS.values()} <= set(MODEL_PRESETS)
    assert {DATA_DEFAULT, SAMPLE_DEFAULT} <= set(PRESETS)


def test_real_data_without_a_preset_trains_the_tuned_model_with_its_settings():
    config = config_of(*DATA)
    assert (config.preset, config.epochs, config.patience, config.batch_size) == ("tuned", 100, 8, 512)
    assert config.model == MODEL_PRESETS["tuned"] and config.tuned_peer is True
    assert config.model.ensemble == 4 and config.model.bin_encoding == "piecewise_linear"
    assert config.preset_why == "the default with --data; --preset reference for the 2017 network"


def test_explicit_flags_win_over_the_preset():
    config = config_of(*DATA, "--epochs", "3", "--patience", "0", "--batch-size", "64", "--hidden-units", "32",
                       "--dropout", "0.1", "--learning-rate", "0.01")
    assert (config.preset, config.epochs, config.patience, config.batch_size) == ("tuned", 3, 0, 64)
    assert (config.model.hidden_units, config.model.dropout, config.model.learning_rate) == ((32,), 0.1, 0.01)
    assert config.model.ensemble == 4  # the rest of the preset stays


def test_the_synthetic_sample_gets_the_quick_preset_without_the_peer_search():
    config = config_of()
    assert (config.preset, config.epochs, config.patience, config.batch_size) == ("sample", 30, 5, 256)
    assert config.model == ModelConfig() and config.tuned_peer is False and config.data is None
    assert config.preset_why == "built-in synthetic sample; --preset tuned for the full model"
    assert config_of("--preset", "tuned").epochs == 100  # asked for by name, it trains in full


@pytest.mark.parametrize("data", [[], DATA])
def test_reference_is_the_2017_network_with_its_settings(data):
    config = config_of(*data, "--preset", "reference")
    assert config.model == ModelConfig(hidden_units=(100, 60), dropout=0.2, max_norm=3.0, learning_rate=1e-3)
    assert (config.epochs, config.patience, config.batch_size, config.tuned_peer) == (30, 5, 256, True)
    assert (config.preset, config.preset_why) == ("reference", "--preset reference")


def test_a_train_config_built_directly_keeps_the_2017_settings():
    """Code and tests that build TrainConfig themselves are unaffected by the CLI's default preset."""
    config = TrainConfig(data=["loans.csv"])
    assert (config.epochs, config.patience, config.batch_size, config.model) == (30, 5, 256, ModelConfig())
    assert config.preset is None and config.tuned_peer is True


def test_the_runner_resolves_presets_as_the_cli_does(tmp_path):
    from training.cloud.runner import train_config

    from_s3 = train_config([], data=["/srv/lendingclub/loans.csv"], output_dir=tmp_path, run_id="r")
    assert (from_s3.preset, from_s3.epochs, from_s3.batch_size) == ("tuned", 100, 512)
    synthetic = train_config(["--epochs", "2"], data=None, output_dir=tmp_path, run_id="r")
    assert (synthetic.preset, synthetic.epochs, synthetic.tuned_peer) == ("sample", 2, False)


def test_choose_preset_refuses_an_unknown_name():
    from training.errors import ConfigError

    assert choose_preset("tuned", synthetic=True) == ("tuned", "--preset tuned")
    with pytest.raises(ConfigError, match="unknown preset 'bogus'"):
        choose_preset("bogus", synthetic=False)
