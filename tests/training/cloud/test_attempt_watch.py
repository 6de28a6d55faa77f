"""The attempt's watchers: stop request, progress, spot-notice poller and monitor (fakes, no AWS)."""
import threading
import time

from training.cloud.attempt_watch import Progress, StopRequest, monitor, watch_notices
from training.cloud.core.imds import MetadataError


def test_the_first_stop_request_wins():
    stop = StopRequest()
    stop.request("INTERRUPTED", "spot notice")
    stop.request("STOPPED", "cap")
    assert (stop.state, stop.reason, stop.event.is_set()) == ("INTERRUPTED", "spot notice", True)


class Imds:
    def __init__(self, answers):
        self.answers = list(answers)

    def spot_action(self):
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_spot_notice_stops_training_after_failed_polls():
    stop, done, measurements = StopRequest(), threading.Event(), {}
    imds = Imds([MetadataError("timeout"), None, {"action": "terminate", "time": "2026-03-01T12:02:00Z"}])
    watch_notices(imds, stop, done, 0.01, measurements)
    assert stop.state == "INTERRUPTED"
    assert stop.reason == "spot interruption notice: terminate at 2026-03-01T12:02:00Z"
    assert "notice_seen_at" in measurements


def test_notice_polling_ends_with_the_attempt():
    stop, done = StopRequest(), threading.Event()
    done.set()
    watch_notices(Imds([{"action": "stop"}]), stop, done, 0.01, {})
    assert stop.state is None


def run_monitor(progress, stop, *, seconds, deadline=None, read=lambda: {"state": "RUNNING"}, during=lambda: None):
    beats, done = [], threading.Event()

    def beat(count):
        beats.append(count)
        return {"state": "RUNNING"}

    thread = threading.Thread(target=monitor, args=(progress, stop, done), daemon=True,
                              kwargs=dict(heartbeat_seconds=0.05, deadline=deadline, max_runtime_hours=2,
                                          beat=beat, read=read))
    thread.start()
    during()
    time.sleep(seconds)
    done.set()
    thread.join(5)
    return beats


def test_monitor_beats_only_when_progress_moved():
    progress, stop = Progress(), StopRequest()
    progress.advance()  # before the monitor started: not a beat
    beats = run_monitor(progress, stop, seconds=0.3, during=progress.advance)
    assert beats == [2] and stop.state is None


def test_monitor_stops_at_the_cap_and_on_an_out_of_band_terminal_state():
    stop = StopRequest()
    run_monitor(Progress(), stop, seconds=0.1, deadline=time.time() - 1)
    assert (stop.state, stop.reason) == ("STOPPED", "max runtime of 2 h reached")
    stop = StopRequest()
    run_monitor(Progress(), stop, seconds=0.3, read=lambda: {"state": "STOPPED", "reason": "stopped by alice"})
    assert (stop.state, stop.reason) == ("STOPPED", "run set to STOPPED out of band: stopped by alice")
