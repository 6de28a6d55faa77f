"""Standard library only (Python 3.9+): the run's contracts and the code that runs where the project's
dependencies are not installed: the boot kit (before pip) and the watchdog Lambda. Shipped whole as one
asset that both import as `training.cloud.core.<module>`, exactly as the instance does."""
