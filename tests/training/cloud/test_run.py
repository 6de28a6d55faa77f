"""`python -m training.cloud.run`: settings errors exit with RunnerExit.CONFIG and one line."""
from training.cloud.core.lifecycle import RunnerExit
from training.cloud.run import main


def test_a_missing_env_file_is_a_config_exit(tmp_path, capsys):
    assert main(["--env-file", str(tmp_path / "absent.env")]) == int(RunnerExit.CONFIG)
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read env file") and err.count("\n") == 1
