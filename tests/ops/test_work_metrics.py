"""Worker-side counters kept in Redis: exported cumulatively, never failing the work."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from backend.common.jobs import make_redis
from backend.operations.work_metrics import count_push_outcomes, observe_transcode_seconds


def samples(client) -> dict[tuple[str, tuple], float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_outcomes_and_transcode_times_add_up_across_calls(app, client):
    with app.app_context():
        count_push_outcomes({"sent": 480, "unregistered": 3, "internal": 0})
        count_push_outcomes({"sent": 20})
        for seconds in (0.5, 4.0, 4.5, 2000.0):
            observe_transcode_seconds(seconds)
    found = samples(client)
    assert found[("groundwork_push_outcomes_total", (("outcome", "sent"),))] == 500
    assert found[("groundwork_push_outcomes_total", (("outcome", "unregistered"),))] == 3
    assert ("groundwork_push_outcomes_total", (("outcome", "internal"),)) not in found
    bucket = "groundwork_media_transcode_seconds_bucket"
    assert found[(bucket, (("le", "1.0"),))] == 1
    assert found[(bucket, (("le", "5.0"),))] == 3
    assert found[(bucket, (("le", "1200.0"),))] == 3
    assert found[(bucket, (("le", "+Inf"),))] == 4
    assert found[("groundwork_media_transcode_seconds_count", ())] == 4
    assert found[("groundwork_media_transcode_seconds_sum", ())] == 2009.0


def test_counting_with_redis_unreachable_does_not_fail_the_work():
    unreachable = make_redis("redis://127.0.0.1:1/0", socket_timeout=0.2)
    count_push_outcomes({"sent": 1}, connection=unreachable)
    observe_transcode_seconds(1.0, connection=unreachable)
