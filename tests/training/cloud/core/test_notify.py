from training.cloud.core import notify


class FakeSns:
    def __init__(self):
        self.published = []

    def publish(self, **kwargs):
        self.published.append(kwargs)
        return {"MessageId": f"m{len(self.published)}"}


def test_message_names_the_run_state_progress_error_and_metrics():
    status = {"state": "FAILED", "attempt": 2, "epochs": 30, "last_epoch": 7, "error": "bad flag",
              "validation": {"accuracy": 0.61234, "val_loss": 0.9}}
    subject, body = notify.format_message("exp-1", "FAILED", status, "step 'pip install'")
    assert subject == "spotgrade run exp-1: FAILED"
    lines = body.splitlines()
    assert lines[:2] == ["Run exp-1: FAILED", "step 'pip install'"]
    assert "state: FAILED  attempt: 2" in lines
    assert "epochs completed: 7 of 30" in lines
    assert "error: bad flag" in lines
    assert "  accuracy: 0.6123" in lines and "  val_loss: 0.9000" in lines
    assert lines[-1] == "See: python -m training status --run-id exp-1"


def test_subject_stays_under_the_sns_limit():
    subject, _ = notify.format_message("r" * 63, "x" * 80, None)
    assert len(subject) == 100


def test_publish_only_with_a_topic():
    sns = FakeSns()
    assert notify.publish(sns, None, "exp-1", "SUCCEEDED", {}) is None
    assert sns.published == []
    assert notify.publish(sns, "arn:aws:sns:eu-west-1:1:t", "exp-1", "SUCCEEDED", {"state": "SUCCEEDED"}) == "m1"
    assert sns.published[0]["TopicArn"] == "arn:aws:sns:eu-west-1:1:t"
    assert sns.published[0]["Subject"] == "spotgrade run exp-1: SUCCEEDED"
