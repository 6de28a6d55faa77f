"""spotgrade's training pipeline: data -> features -> model -> train -> evaluate -> predict.

Never imports aws_cdk. Heavy libraries (TensorFlow, pandas) are imported by the modules that need
them, so `python -m training --help` stays instant.
"""
__version__ = "0.1.0"  # the distribution's version (pyproject.toml reads it); `--version` prints it
