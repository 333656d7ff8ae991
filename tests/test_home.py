"""The home page, `/` leading to it, and the list of jobs that --list-jobs turns on."""

from __future__ import annotations

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.conftest import Fetch, as_json
from tornado_progress.home import LISTED_JOBS


@pytest.mark.gen_test
async def test_the_root_leads_to_the_home_page(http_client: AsyncHTTPClient,
                                               base_url: str) -> None:
    answer = await http_client.fetch(f"{base_url}/", follow_redirects=False,
                                     raise_error=False)
    assert (answer.code, answer.headers["Location"]) == (302, "progress/")
    page = await http_client.fetch(f"{base_url}/")
    assert page.effective_url == f"{base_url}/progress/"
    assert page.headers["Content-Type"].startswith("text/html")


@pytest.mark.gen_test
async def test_the_home_page_gives_lines_with_this_servers_address(
        http_client: AsyncHTTPClient, base_url: str) -> None:
    page = (await http_client.fetch(f"{base_url}/progress/")).body.decode()
    assert f"curl &quot;{base_url}/progress/update?jobid=myjob&amp;" in page
    assert f"Reporter(&quot;{base_url}&quot;, &quot;myjob&quot;" in page
    assert '<form class="open-job" action="show" method="get">' in page
    assert 'name="jobid"' in page
    assert "Content-Security-Policy" in (await http_client.fetch(
        f"{base_url}/progress/")).headers
    behind = await http_client.fetch(f"{base_url}/progress/", headers={
        "X-Forwarded-Host": "progress.example", "X-Forwarded-Proto": "https"})
    assert "https://progress.example/progress/update?" in behind.body.decode()


@pytest.mark.gen_test
async def test_jobs_are_not_listed_unless_the_operator_says_so(
        fetch: Fetch, http_client: AsyncHTTPClient, base_url: str) -> None:
    await fetch("update", jobid="private", workid="w", current=1, total=2)
    refused = await fetch("jobs")
    assert refused.code == 404
    assert "--list-jobs" in as_json(refused)["error"]
    page = (await http_client.fetch(f"{base_url}/progress/")).body.decode()
    assert "private" not in page and "home.js" not in page


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"list_jobs": True}], indirect=True)
async def test_listed_jobs_come_latest_first_with_summaries(
        fetch: Fetch, http_client: AsyncHTTPClient, base_url: str) -> None:
    for index in range(LISTED_JOBS + 5):
        await fetch("update", jobid=f"job {index}", workid="w", current=index % 3, total=2)
    await fetch("create", jobid="<b>new</b>", desc="", workers=4)
    jobs = as_json(await fetch("jobs"))["jobs"]
    assert len(jobs) == LISTED_JOBS
    assert jobs[0]["jobid"] == "<b>new</b>" and jobs[0]["summary"]["waiting"] == 4
    assert [job["jobid"] for job in jobs[1:3]] == [f"job {LISTED_JOBS + 4}",
                                                   f"job {LISTED_JOBS + 3}"]
    assert jobs[1]["show_path"] == f"show?jobid=job%20{LISTED_JOBS + 4}"
    page = (await http_client.fetch(f"{base_url}/progress/")).body.decode()
    assert "&lt;b&gt;new&lt;/b&gt;" in page and "<b>new</b>" not in page
    assert "home.js" in page
