"""Dashboards: actives, the retention heatmap, funnels and campaign funnels, read by analysts and admins."""
from __future__ import annotations

import re

from tests.analytics.test_attribution import _run_campaign
from tests.analytics.test_queries import history  # noqa: F401 - the known event history (fixture)
from tests.campaigns.conftest import create_campaign, marketer, marketer_headers  # noqa: F401 - fixtures

RANGE = "from=2026-06-01&to=2026-06-14"


def _rows(html: str, testid: str) -> list[list[str]]:
    """Cell texts of the table marked ``data-testid=testid`` (tags stripped)."""
    table = re.search(rf'data-testid="{testid}">(.*?)</table>', html, re.S)
    assert table, f"no table {testid}"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.S)
    cells = (re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S) for row in rows)
    return [[" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in row] for row in cells]


def test_analyst_sees_actives_chart_and_a_retention_heatmap(history, staff_client):  # noqa: F811
    page = staff_client("analyst").get(f"/admin/dashboards/?{RANGE}&interval=day")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="chart-actives"' in html and "data:image/svg+xml;base64," in html
    actives = dict(_rows(html, "actives-table")[1:])
    assert actives["2026-06-01"] == "1" and actives["2026-06-02"] == "2" and actives["2026-06-09"] == "1"
    heat = _rows(html, "retention-heatmap")
    assert heat[0][:4] == ["Cohort (week of)", "Users", "W0", "W1"]
    first_week = next(r for r in heat if r[0] == "2026-06-01")
    assert first_week[1] == "2" and first_week[2] == "100 %"  # a and b first seen that week
    assert 'class="heat-5"' in html  # a full cohort is the darkest shade


def test_funnel_page_shows_drop_off_per_step_and_a_breakdown(history, staff_client):  # noqa: F811
    analyst = staff_client("analyst")
    html = analyst.get(f"/admin/dashboards/funnel?steps=app_open,signup,purchase&{RANGE}&window_h=24").get_data(
        as_text=True)
    assert _rows(html, "funnel-table")[1][:4] == ["—", "3", "2 (−33 %)", "1 (−50 %)"]
    split = analyst.get(f"/admin/dashboards/funnel?steps=app_open,signup&{RANGE}&window_h=24&breakdown=platform")
    rows = {r[0]: r[1:3] for r in _rows(split.get_data(as_text=True), "funnel-table")[1:]}
    assert rows == {"android": ["1", "1 (−0 %)"], "ios": ["2", "1 (−50 %)"]}


def test_bad_dashboard_input_is_explained_not_a_500(staff_client):
    analyst = staff_client("analyst")
    answer = analyst.get("/admin/dashboards/?from=yesterday")
    assert answer.status_code == 200 and "Dates are YYYY-MM-DD" in answer.get_data(as_text=True)
    one_step = analyst.get("/admin/dashboards/funnel?steps=app_open&window_h=abc")
    text = one_step.get_data(as_text=True)
    assert one_step.status_code == 200 and "A funnel has 2 to" in text and "The window is a number of hours" in text
    unknown = analyst.get("/admin/dashboards/campaigns?campaign_id=not-a-uuid&event=purchase")
    assert unknown.status_code == 200 and "Choose a campaign from the list" in unknown.get_data(as_text=True)


def test_campaign_funnel_shows_each_variant_beside_the_holdout(client, create_campaign, marketer_headers,  # noqa: F811
                                                               populate, run_jobs, app, staff_client):
    campaign_id, expected = _run_campaign(client, create_campaign, marketer_headers, populate, run_jobs, app)
    html = staff_client("analyst").get(
        f"/admin/dashboards/campaigns?campaign_id={campaign_id}&event=purchase&window_h=24").get_data(as_text=True)
    assert 'data-testid="chart-attribution"' in html
    rows = {r[0]: r for r in _rows(html, "attribution-table")[1:]}
    assert set(rows) == {"A", "B", "holdout"}
    for variant, tally in expected.items():
        assert rows[variant][1] == str(tally["recipients"])
        assert rows[variant][3] == str(tally["opened"])
        assert rows[variant][6] == str(tally["delivery"])
    assert rows["holdout"][8] == "—" and rows["A"][8].endswith("%")
    # the marketer sees the same conversions on the campaign's own stats page
    stats = staff_client("marketer").get(f"/admin/campaigns/{campaign_id}/stats?event=purchase&window_h=24")
    assert {r[0] for r in _rows(stats.get_data(as_text=True), "attribution-table")[1:]} == {"A", "B", "holdout"}
