"""The long poll with real parked connections: when it answers, with what, and that clients who
leave leave nothing behind."""

from __future__ import annotations

import asyncio
import resource
from urllib.parse import urlparse

import pytest
from tornado.httpclient import HTTPResponse

from tests.conftest import Fetch, as_json
from tornado_progress.bodies import BodyBuilder
from tornado_progress.config import Settings
from tornado_progress.longpoll import Waiters
from tornado_progress.model import Store

# Every HTTP test runs on the fast path and through the handlers.
RUN_ON_BOTH_PATHS = True

PARKED = 1000


async def wait_for_waiters(waiters: Waiters, count: int, seconds: float = 10.0) -> None:
    """Until `count` polls are parked; bounded so a broken server fails instead of hanging."""
    for _ in range(int(seconds / 0.01)):
        if waiters.count == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{waiters.count} waiters, expected {count}")


async def start_poll(fetch: Fetch, waiters: Waiters, jobid: str, since: int,
                     timeout: float = 30) -> asyncio.Task[HTTPResponse]:
    before = waiters.count
    task = asyncio.ensure_future(fetch("poll", jobid=jobid, since=since, timeout=timeout))
    await wait_for_waiters(waiters, before + 1)
    return task


async def three_workers(fetch: Fetch) -> int:
    for workid in ("w1", "w2", "w3"):
        await fetch("update", jobid="j", workid=workid, current=1, total=10)
    return int(as_json(await fetch("status", jobid="j"))["version"])


@pytest.mark.gen_test
async def test_since_zero_answers_at_once_with_everything(fetch: Fetch) -> None:
    await three_workers(fetch)
    response = await fetch("poll", jobid="j", since=0)
    body = as_json(response)
    assert body["full"] is True
    assert [w["workid"] for w in body["workers"]] == ["w1", "w2", "w3"]
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test
async def test_update_wakes_a_parked_poll_with_only_the_changed_worker(
        fetch: Fetch, waiters: Waiters) -> None:
    version = await three_workers(fetch)
    poll = await start_poll(fetch, waiters, "j", version)
    update = as_json(await fetch("update", jobid="j", workid="w2", current=7, total=10))
    body = as_json(await poll)
    assert body["full"] is False
    assert body["version"] == update["version"]
    assert [(w["workid"], w["current"]) for w in body["workers"]] == [("w2", 7)]
    assert body["summary"]["workers"] == 3
    assert waiters.count == 0


@pytest.mark.gen_test
async def test_an_update_of_another_job_wakes_nobody_here(fetch: Fetch, waiters: Waiters) -> None:
    version = await three_workers(fetch)
    poll = await start_poll(fetch, waiters, "j", version, timeout=0.5)
    await fetch("update", jobid="other", workid="w", current=1, total=2)
    assert waiters.count == 1
    body = as_json(await poll)
    assert body == {**body, "version": version, "full": False, "workers": []}


@pytest.mark.gen_test
async def test_timeout_answers_current_version_and_no_workers(fetch: Fetch) -> None:
    version = await three_workers(fetch)
    body = as_json(await fetch("poll", jobid="j", since=version, timeout=0.2))
    assert (body["version"], body["full"], body["workers"]) == (version, False, [])
    body = as_json(await fetch("poll", jobid="j", since=version, timeout=0))
    assert body["workers"] == []


@pytest.mark.gen_test
async def test_delete_while_waiting_answers_404(fetch: Fetch, waiters: Waiters) -> None:
    version = await three_workers(fetch)
    poll = await start_poll(fetch, waiters, "j", version)
    await fetch("delete", jobid="j")
    response = await poll
    assert response.code == 404
    assert as_json(response) == {"error": "no job with jobid 'j'"}


@pytest.mark.gen_test
async def test_recreate_while_waiting_answers_full_and_empty(fetch: Fetch,
                                                             waiters: Waiters) -> None:
    version = await three_workers(fetch)
    poll = await start_poll(fetch, waiters, "j", version)
    created = as_json(await fetch("create", jobid="j", desc="again"))
    body = as_json(await poll)
    assert (body["full"], body["workers"], body["desc"]) == (True, [], "again")
    assert body["version"] == created["version"] > version


@pytest.mark.gen_test
async def test_cursor_from_an_older_generation_gets_everything(fetch: Fetch) -> None:
    version = await three_workers(fetch)
    await fetch("create", jobid="j")
    await fetch("update", jobid="j", workid="new", current=1, total=2)
    await fetch("update", jobid="j", workid="newer", current=1, total=2)
    body = as_json(await fetch("poll", jobid="j", since=version))
    assert body["full"] is True
    assert [w["workid"] for w in body["workers"]] == ["new", "newer"]


@pytest.mark.gen_test
async def test_cursor_ahead_of_the_server_gets_everything_at_once(fetch: Fetch) -> None:
    """A client that saw versions from before a restart must not wait for them again."""
    version = await three_workers(fetch)
    body = as_json(await fetch("poll", jobid="j", since=version + 1000, timeout=30))
    assert body["full"] is True
    assert len(body["workers"]) == 3


@pytest.mark.parametrize(("query", "sentence"), [
    ({"since": "x"}, "since must be a whole number >= 0, got 'x'"),
    ({}, "since is required"),
    ({"since": "0", "timeout": "61"}, "timeout must be a number from 0 to 60, got '61'"),
    ({"since": "0", "timeout": "-1"}, "timeout must be a number from 0 to 60, got '-1'"),
])
@pytest.mark.gen_test
async def test_bad_poll_parameters(fetch: Fetch, query: dict[str, str], sentence: str) -> None:
    await three_workers(fetch)
    response = await fetch("poll", jobid="j", **query)
    assert response.code == 400
    assert as_json(response) == {"error": sentence}


@pytest.mark.gen_test
async def test_many_waiters_share_one_body(fetch: Fetch, waiters: Waiters, store: Store,
                                           bodies: BodyBuilder) -> None:
    version = await three_workers(fetch)
    polls = [await start_poll(fetch, waiters, "j", version) for _ in range(5)]
    await fetch("update", jobid="j", workid="w1", current=2, total=10)
    answers = [(await poll).body for poll in polls]
    assert len(set(answers)) == 1
    job = store.get("j")
    now = job.updated
    first = await bodies.poll(job, version, now)
    assert await bodies.poll(job, version, now) is first  # built once per version


@pytest.mark.gen_test(timeout=60)
async def test_dropped_parked_polls_leave_no_waiters(fetch: Fetch, waiters: Waiters,
                                                     base_url: str) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * PARKED)), hard))
    version = await three_workers(fetch)
    baseline = as_json(await fetch("health"))["waiters"]
    address = urlparse(base_url)
    request = (f"GET /progress/poll?jobid=j&since={version}&timeout=60 HTTP/1.1\r\n"
               f"Host: {address.netloc}\r\n\r\n").encode()
    writers = []
    for _ in range(PARKED):
        _, writer = await asyncio.open_connection(address.hostname, address.port)
        writer.write(request)
        writers.append(writer)
    await wait_for_waiters(waiters, baseline + PARKED)
    for writer in writers:
        writer.close()
    await wait_for_waiters(waiters, baseline)
    assert as_json(await fetch("health"))["waiters"] == baseline


@pytest.mark.parametrize("settings", [Settings(poll_interval=0.3)])
@pytest.mark.gen_test
async def test_a_viewer_coming_back_behind_waits_for_the_pacing_interval(
        fetch: Fetch, waiters: Waiters, settings: Settings) -> None:
    version = await three_workers(fetch)
    poll = await start_poll(fetch, waiters, "j", version)
    await fetch("update", jobid="j", workid="w1", current=2, total=10)
    answered = as_json(await poll)["version"]  # quiet job: answered at once
    await fetch("update", jobid="j", workid="w2", current=2, total=10)  # during the round trip
    again = await start_poll(fetch, waiters, "j", answered)  # parked, not answered at once
    body = as_json(await again)
    assert body["full"] is False
    assert [w["workid"] for w in body["workers"]] == ["w2"]
    fresh = as_json(await fetch("poll", jobid="j", since=0))  # a new page is never held back
    assert fresh["full"] is True
