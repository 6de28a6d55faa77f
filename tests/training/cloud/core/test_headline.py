from training.cloud.core.headline import HEADLINE_KEYS, headline, metrics_line


def test_headline_keeps_only_the_headline_keys_present():
    test = {"accuracy": 0.61, "weighted_f1": 0.6, "confusion_matrix": [[1]], "log_loss": 0.9}
    assert headline(test) == {"accuracy": 0.61, "weighted_f1": 0.6}
    assert headline(None) == {}
    assert set(HEADLINE_KEYS) == {"accuracy", "weighted_f1", "macro_f1"}


def test_metrics_line_in_key_order_with_validation_figures():
    line = metrics_line({"val_loss": 0.84567, "macro_f1": 0.4, "accuracy": 0.62444, "note": "x"})
    assert line == "accuracy 0.624  macro_f1 0.400  val_loss 0.846"


def test_metrics_line_digits_separator_and_nothing_to_show():
    assert metrics_line({"accuracy": 0.5}, digits=4, separator=", ") == "accuracy 0.5000"
    assert metrics_line({"accuracy": "n/a"}) == "-"
    assert metrics_line(None) == "-"
