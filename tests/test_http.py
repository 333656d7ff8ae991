"""Every JSON endpoint through HTTP: the parameter rules, error sentences, 404 forms, POST
forms, id equivalence, limits and proxy headers of the contract (docs/API.md)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from tests.conftest import Fetch, as_json
from tornado_progress.config import Settings
from tornado_progress.limits import Limits
from tornado_progress.model import Store

# Every HTTP test runs on the fast path and through the handlers.
RUN_ON_BOTH_PATHS = True

UPDATE = {"jobid": "j1", "workid": "w1", "current": "5", "total": "22"}


async def raw(http_client: AsyncHTTPClient, base_url: str, path_and_query: str,
              **kwargs: object) -> HTTPResponse:
    """A request with the query string exactly as written, as an unencoded curl sends it."""
    response: HTTPResponse = await http_client.fetch(
        base_url + path_and_query, raise_error=False, **kwargs)
    return response


@pytest.mark.gen_test
async def test_create_answers_absolute_urls(fetch: Fetch, base_url: str) -> None:
    answer = as_json(await fetch("create", jobid="my job+1", desc="Testing"))
    assert answer["jobid"] == "my job+1"
    assert answer["desc"] == "Testing"
    assert answer["truncated"] is False
    assert answer["show_url"] == base_url + "/progress/show?jobid=my%20job%2B1"
    assert answer["render_url"] == base_url + "/progress/render?jobid=my%20job%2B1"


@pytest.mark.gen_test
async def test_create_urls_honour_forwarded_headers(fetch: Fetch) -> None:
    # lists: the last value is the one our own proxy added
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "spoofed, ws.example.org",
               "X-Forwarded-Prefix": "/tools/"}
    answer = as_json(await fetch("create", jobid="j", headers=headers))
    assert answer["show_url"] == "https://ws.example.org/tools/progress/show?jobid=j"
    headers = {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "proxy",
               "X-Forwarded-Port": "8080"}
    answer = as_json(await fetch("create", jobid="j", headers=headers))
    assert answer["render_url"] == "http://proxy:8080/progress/render?jobid=j"


@pytest.mark.gen_test
async def test_forwarded_headers_of_the_wrong_shape_are_ignored(fetch: Fetch,
                                                                base_url: str) -> None:
    headers = {"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": 'a"b<c>',
               "X-Forwarded-Port": "99x", "X-Forwarded-Prefix": "tp"}
    answer = as_json(await fetch("create", jobid="j", headers=headers))
    assert answer["show_url"] == base_url + "/progress/show?jobid=j"


@pytest.mark.gen_test
async def test_update_then_status(fetch: Fetch) -> None:
    response = await fetch("update", **UPDATE, desc="lots of RFI")
    assert response.code == 200
    assert as_json(response)["truncated"] is False
    status = as_json(await fetch("status", jobid="j1"))
    assert status["jobid"] == "j1"
    assert status["desc"] == ""
    assert status["full"] is True
    for field in ("version", "created", "updated", "server_time"):
        assert isinstance(status[field], (int, float))
    [worker] = status["workers"]
    assert worker["workid"] == "w1"
    assert (worker["current"], worker["total"]) == (5, 22)
    assert worker["desc"] == "lots of RFI"
    assert worker["ok"] is True
    assert isinstance(worker["updated"], float)


@pytest.mark.gen_test
async def test_post_forms_work_like_get(fetch: Fetch) -> None:
    response = await fetch("create", method="POST", jobid="posted", desc="a b&c")
    assert response.code == 200, response.body
    response = await fetch("update", method="POST", jobid="posted", workid="w",
                           current="1.5", total="3", ok="no")
    assert response.code == 200, response.body
    status = as_json(await fetch("status", jobid="posted"))
    assert status["desc"] == "a b&c"
    assert status["workers"][0]["ok"] is False
    assert status["workers"][0]["current"] == 1.5
    response = await fetch("delete", method="POST", jobid="posted")
    assert response.code == 200
    assert (await fetch("status", jobid="posted")).code == 404


@pytest.mark.gen_test
async def test_post_body_errors_are_sentences(fetch: Fetch) -> None:
    response = await fetch("update", method="POST", jobid="j", workid="w", current="x",
                           total="1")
    assert response.code == 400
    assert as_json(response)["error"] == "current must be a number >= 0, got 'x'"


@pytest.mark.gen_test
async def test_plus_unencoded_and_encoded_name_the_same_job(
        http_client: AsyncHTTPClient, base_url: str, fetch: Fetch) -> None:
    jobid = "me:2026-11-29T05:00:00,123456789+00:00"
    # curl without --data-urlencode: the + arrives raw and decodes as a space
    created = await raw(http_client, base_url, f"/progress/create?jobid={jobid}&desc=My+Job")
    assert created.code == 200
    # requests encodes the + as %2B
    await fetch("update", jobid=jobid, workid="flagger1", current=7, total=50)
    status = as_json(await fetch("status", jobid=jobid))
    assert status["desc"] == "My Job"
    assert [w["workid"] for w in status["workers"]] == ["flagger1"]
    same = await raw(http_client, base_url, f"/progress/status?jobid={jobid}")
    assert as_json(same)["version"] == status["version"]


@pytest.mark.gen_test
async def test_update_before_create_then_create_resets(fetch: Fetch) -> None:
    await fetch("update", **UPDATE)
    before = as_json(await fetch("status", jobid="j1"))
    created = as_json(await fetch("create", jobid="j1", desc="run 2"))
    assert created["version"] > before["version"]
    after = as_json(await fetch("status", jobid="j1"))
    assert after["workers"] == []
    assert after["desc"] == "run 2"
    await fetch("update", **UPDATE)
    assert len(as_json(await fetch("status", jobid="j1"))["workers"]) == 1


@pytest.mark.gen_test
async def test_version_rises_on_every_change(fetch: Fetch) -> None:
    versions = [as_json(await fetch("create", jobid="j1"))["version"]]
    for current in ("1", "2", "2"):
        versions.append(as_json(await fetch("update", **{**UPDATE, "current": current}))
                        ["version"])
    versions.append(as_json(await fetch("status", jobid="j1"))["version"])
    assert versions[:-1] == sorted(set(versions[:-1]))
    assert versions[-1] == versions[-2]


@pytest.mark.gen_test
async def test_desc_is_truncated_and_the_answer_says_so(fetch: Fetch) -> None:
    answer = as_json(await fetch("update", **UPDATE, desc="é" * 1500))
    assert answer["truncated"] is True
    worker = as_json(await fetch("status", jobid="j1"))["workers"][0]
    assert worker["desc"] == "é" * 1024
    answer = as_json(await fetch("create", jobid="j2", desc="x" * 1025))
    assert answer["truncated"] is True
    assert answer["desc"] == "x" * 1024


BAD_UPDATES = [
    ({"jobid": None}, "jobid is required"),
    ({"jobid": ""}, "jobid must not be empty"),
    ({"jobid": "x" * 257}, "jobid must be at most 256 characters, got 257"),
    ({"workid": None}, "workid is required"),
    ({"workid": ""}, "workid must not be empty"),
    ({"current": None}, "current is required"),
    ({"current": "abc"}, "current must be a number >= 0, got 'abc'"),
    ({"current": "-1"}, "current must be a number >= 0, got '-1'"),
    ({"total": "abc"}, "total must be a number >= 0, got 'abc'"),
    ({"total": "nan"}, "total must be a number >= 0, got 'nan'"),
    ({"total": "inf"}, "total must be a number >= 0, got 'inf'"),
    ({"ok": "perhaps"}, "ok must be one of 0, 1, false, true, no, yes, off, on; got 'perhaps'"),
]


@pytest.mark.parametrize(("change", "sentence"), BAD_UPDATES)
@pytest.mark.gen_test
async def test_bad_update_is_400_with_a_sentence_and_changes_nothing(
        fetch: Fetch, store: Store, change: dict[str, str | None], sentence: str) -> None:
    await fetch("update", **UPDATE)
    version = store.version
    query = {k: v for k, v in {**UPDATE, **change}.items() if v is not None}
    response = await fetch("update", **query)
    assert response.code == 400
    assert as_json(response) == {"error": sentence}
    assert store.version == version


@pytest.mark.parametrize(("value", "ok"), [("0", False), ("FALSE", False), ("no", False),
                                           ("Off", False), ("1", True), ("True", True),
                                           ("YES", True), ("on", True)])
@pytest.mark.gen_test
async def test_ok_values(fetch: Fetch, value: str, ok: bool) -> None:
    await fetch("update", **UPDATE, ok=value)
    assert as_json(await fetch("status", jobid="j1"))["workers"][0]["ok"] is ok


@pytest.mark.gen_test
async def test_zero_total_and_current_above_total(fetch: Fetch) -> None:
    assert (await fetch("update", **{**UPDATE, "total": "0", "current": "0"})).code == 200
    assert (await fetch("update", **{**UPDATE, "workid": "w2", "current": "30"})).code == 200
    workers = as_json(await fetch("status", jobid="j1"))["workers"]
    assert [(w["current"], w["total"], w["fraction"]) for w in workers] == [
        (0, 0, 0.0), (30, 22, 1.0)]


@pytest.mark.gen_test
async def test_unknown_job_is_404_everywhere(fetch: Fetch) -> None:
    for endpoint, extra in (("status", {}), ("poll", {"since": "0"}), ("delete", {})):
        response = await fetch(endpoint, jobid="nope", **extra)
        assert response.code == 404, endpoint
        assert as_json(response) == {"error": "no job with jobid 'nope'"}
    show = await fetch("show", jobid="nope")
    assert show.code == 404
    assert show.headers["Content-Type"].startswith("text/html")
    render = await fetch("render", jobid="nope")
    assert render.code == 404
    assert render.headers["Content-Type"] == "image/png"
    assert render.body.startswith(b"\x89PNG")


@pytest.mark.gen_test
async def test_delete(fetch: Fetch) -> None:
    await fetch("update", **UPDATE)
    response = await fetch("delete", jobid="j1")
    assert response.code == 200
    assert as_json(response)["deleted"] is True
    assert (await fetch("delete", jobid="j1")).code == 404


@pytest.mark.gen_test
async def test_health(fetch: Fetch, snapshotter: object) -> None:
    await fetch("update", **UPDATE)
    await fetch("update", **{**UPDATE, "workid": "w2"})
    health = as_json(await fetch("health"))
    assert health["jobs"] == 1
    assert health["workers"] == 2
    assert health["uptime_s"] >= 0
    assert health["last_snapshot"] is None
    assert health["waiters"] == 0


@pytest.mark.gen_test
async def test_unknown_parameters_are_ignored(fetch: Fetch) -> None:
    assert (await fetch("update", **UPDATE, colour="blue")).code == 200


@pytest.mark.gen_test
async def test_bad_utf8_is_a_400_sentence(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await raw(http_client, base_url, "/progress/update?jobid=%ff&workid=w&current=1"
                         "&total=2")
    assert response.code == 400
    assert as_json(response)["error"] == "jobid must be UTF-8 text, got b'\\xff'"


@pytest.mark.gen_test
async def test_wrong_method_and_unknown_path_are_json(fetch: Fetch,
                                                      http_client: AsyncHTTPClient,
                                                      base_url: str) -> None:
    response = await fetch("status", method="POST", jobid="j")
    assert response.code == 405
    assert as_json(response) == {"error": "POST is not allowed on /progress/status; use GET"}
    assert response.headers["Allow"] == "GET"
    response = await fetch("update", method="PUT", jobid="j")
    assert as_json(response) == {"error": "PUT is not allowed on /progress/update; use GET or "
                                          "POST"}
    assert response.headers["Allow"] == "GET, POST"
    response = await raw(http_client, base_url, "/progress/nothing")
    assert response.code == 404
    assert "/progress/nothing" in as_json(response)["error"]


@pytest.mark.gen_test
async def test_every_json_answer_ends_with_one_newline(fetch: Fetch, http_client: AsyncHTTPClient,
                                                       base_url: str) -> None:
    created = as_json(await fetch("create", jobid="nl"))
    answers = [
        await fetch("create", jobid="nl"),
        await fetch("update", jobid="nl", workid="w", current=1, total=2),
        await fetch("status", jobid="nl"),
        await fetch("poll", jobid="nl", since=0),
        await fetch("poll", jobid="nl", since=created["version"]),
        await fetch("poll", jobid="nl", since=10**15, timeout=0),
        await fetch("health"),
        await fetch("status", jobid="nope"),
        await fetch("update", jobid="nl"),
        await fetch("status", method="POST", jobid="nl"),
        await raw(http_client, base_url, "/progress/nothing"),
        await raw(http_client, base_url, "/progress/static/nothing.js"),
        await fetch("delete", jobid="nl"),
    ]
    for answer in answers:
        assert answer.headers["Content-Type"].startswith("application/json"), answer.effective_url
        assert answer.body.endswith(b"}\n") and answer.body.count(b"\n") == 1, answer.body


@pytest.mark.gen_test
async def test_oversized_body_is_413_with_a_sentence(fetch: Fetch, store: Store) -> None:
    response = await fetch("update", method="POST", body="desc=" + "x" * 70_000 + "&jobid=j"
                           "&workid=w&current=1&total=2")
    assert response.code == 413
    assert as_json(response)["error"].startswith("the request body is ")
    assert "--max-request-bytes" in as_json(response)["error"]
    assert store.jobs == {}


@pytest.mark.parametrize("limits", [Limits(max_jobs=2)])
@pytest.mark.gen_test
async def test_job_limit_is_429_and_keeps_existing_jobs(fetch: Fetch, limits: Limits) -> None:
    await fetch("create", jobid="a")
    await fetch("update", jobid="b", workid="w", current=1, total=2)
    response = await fetch("create", jobid="c")
    assert response.code == 429
    assert as_json(response)["error"].startswith("the server holds its limit of 2 jobs")
    for jobid in ("a", "b"):
        assert (await fetch("status", jobid=jobid)).code == 200


@pytest.mark.parametrize("limits", [Limits(max_workers_per_job=1)])
@pytest.mark.gen_test
async def test_worker_limit_is_429(fetch: Fetch, limits: Limits) -> None:
    await fetch("update", **UPDATE)
    response = await fetch("update", **{**UPDATE, "workid": "w2"})
    assert response.code == 429
    assert "--max-workers-per-job" in as_json(response)["error"]


@pytest.mark.gen_test
async def test_status_is_not_cached_by_browsers(fetch: Fetch) -> None:
    await fetch("update", **UPDATE)
    response = await fetch("status", jobid="j1")
    assert response.headers["Cache-Control"] == "no-store"


def test_settings_fixture_uses_a_temporary_folder(settings: Settings, tmp_path: Path) -> None:
    assert settings.snapshot_dir.parent == tmp_path


@pytest.mark.gen_test
async def test_strings_are_kept_exactly_as_sent(fetch: Fetch) -> None:
    await fetch("update", jobid=" j ", workid="w\t1", current=1, total=2, desc=" a\x01b ")
    [worker] = as_json(await fetch("status", jobid=" j "))["workers"]
    assert (worker["workid"], worker["desc"]) == ("w\t1", " a\x01b ")
    assert (await fetch("status", jobid="j")).code == 404


@pytest.mark.gen_test
async def test_a_repeated_parameter_counts_once_the_last(http_client: AsyncHTTPClient,
                                                         base_url: str, fetch: Fetch) -> None:
    await raw(http_client, base_url, "/progress/update?jobid=j&workid=w&current=1&current=3"
              "&total=4")
    assert as_json(await fetch("status", jobid="j"))["workers"][0]["current"] == 3


@pytest.mark.gen_test
async def test_health_answers_head(fetch: Fetch) -> None:
    response = await fetch("health", method="HEAD")
    assert response.code == 200
    assert response.body == b""


@pytest.mark.gen_test
async def test_desc_that_is_not_utf8_is_kept_not_refused(http_client: AsyncHTTPClient,
                                                         base_url: str, fetch: Fetch) -> None:
    response = await raw(http_client, base_url, "/progress/update?jobid=j&workid=w&current=1"
                         "&total=2&desc=caf%e9.fits")
    assert response.code == 200
    worker = as_json(await fetch("status", jobid="j"))["workers"][0]
    assert worker["desc"] == "caf\ufffd.fits"


@pytest.mark.parametrize(("content_type", "extra"), [
    ("multipart/form-data", {}),
    ("multipart/form-data; boundary=xx", {}),
    ("application/x-www-form-urlencoded", {"Content-Encoding": "gzip"}),
])
@pytest.mark.gen_test
async def test_unreadable_post_bodies_are_400_sentences(fetch: Fetch, store: Store,
                                                        content_type: str,
                                                        extra: dict[str, str]) -> None:
    response = await fetch("update", method="POST", body="garbage",
                           headers={"Content-Type": content_type, **extra})
    assert response.code == 400
    assert as_json(response)["error"].startswith("the request body is not a form")
    assert store.jobs == {}


@pytest.mark.gen_test
async def test_an_oversized_chunked_body_is_413_with_a_sentence(fetch: Fetch,
                                                                 store: Store) -> None:
    async def chunks(write: Any) -> None:
        await write(b"jobid=j&workid=w&current=1&total=2&desc=")
        for _ in range(10):
            await write(b"x" * 10_000)

    response = await fetch("update", method="POST", body_producer=chunks)
    assert response.code == 413
    assert as_json(response)["error"].startswith("the request body is at least ")
    assert store.jobs == {}


@pytest.mark.gen_test
async def test_a_refused_long_request_line_is_logged_cut(fetch: Fetch,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        response = await fetch("status", jobid="x" * 50_000)  # under Tornado's own 64 KiB
    assert response.code == 400
    [line] = [record.getMessage() for record in caplog.records
              if record.name == "tornado.access"]
    assert line.startswith("400 GET /progress/status?jobid=xxx")
    assert "(50023 characters)" in line
    assert len(line) < 400


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [Limits(keep_seconds=600, max_keep_seconds=86400)])
async def test_create_takes_maxage_capped_and_expected_workers(fetch: Fetch) -> None:
    mwa = as_json(await fetch("create", jobid="417", desc="pabeam", maxage="43200"))
    assert (mwa["maxage"], mwa["workers"]) == (43200, None)
    capped = as_json(await fetch("create", jobid="long", maxage="1e9", workers="40"))
    assert (capped["maxage"], capped["workers"]) == (86400, 40)
    assert as_json(await fetch("create", jobid="plain"))["maxage"] == 600
    await fetch("update", jobid="long", workid="w", current=1, total=1)
    summary = as_json(await fetch("status", jobid="long"))["summary"]
    assert (summary["workers"], summary["waiting"], summary["fraction"]) == (1, 39, 1 / 40)
    for params, sentence in ((dict(maxage="0"), "maxage must be a number of seconds > 0"),
                             (dict(workers="0"), "workers must be a whole number >= 1"),
                             (dict(workers="200000"), "workers must be an integer from 1 to")):
        answer = await fetch("create", jobid="bad", **params)
        assert answer.code == 400 and as_json(answer)["error"].startswith(sentence)
    assert (await fetch("status", jobid="bad")).code == 404


@pytest.mark.gen_test
async def test_update_takes_a_shell_exit_status(fetch: Fetch) -> None:
    for workid, exit_status in (("good", 0), ("bad", 1), ("worse", 137)):
        answer = await fetch("update", jobid="sh", workid=workid, current=1, total=2,
                             exit=exit_status)
        assert answer.code == 200
    workers = {w["workid"]: w for w in as_json(await fetch("status", jobid="sh"))["workers"]}
    assert [(w["ok"], w["desc"], w["state"]) for w in workers.values()] == [
        (False, "exit 1", "failed"), (True, "", "running"), (False, "exit 137", "failed")]
    refused = await fetch("update", jobid="sh", workid="x", current=1, total=2, exit=2, ok=1)
    assert refused.code == 400 and "disagree" in as_json(refused)["error"]


@pytest.mark.gen_test
async def test_a_batch_of_updates_answers_line_by_line(fetch: Fetch) -> None:
    body = "\n".join([
        "jobid=b&workid=w1&current=1&total=4",
        "jobid=b&workid=w2&current=x&total=4",
        "",
        "jobid=b&workid=w3&current=2&total=4&desc=%C3%BCber&exit=3",
        "jobid=other&workid=w1&current=1&total=1",
    ]) + "\n"
    answer = await fetch("updates", method="POST", body=body)
    assert answer.code == 200
    lines = [json.loads(line) for line in answer.body.decode().splitlines()]
    assert len(lines) == 5
    assert set(lines[0]) == {"version", "truncated"} and lines[3]["version"] > lines[0]["version"]
    assert lines[1] == {"error": "current must be a number >= 0, got 'x'", "status": 400}
    assert lines[2] == {"error": "jobid is required", "status": 400}
    workers = {w["workid"]: w for w in as_json(await fetch("status", jobid="b"))["workers"]}
    assert sorted(workers) == ["w1", "w3"] and workers["w3"]["desc"] == "exit 3: über"
    assert as_json(await fetch("status", jobid="other"))["summary"]["done"] == 1
    refused = await fetch("updates", jobid="b", workid="w", current=1, total=2)
    assert refused.code == 405 and refused.headers["Allow"] == "POST"


@pytest.mark.gen_test
async def test_a_batch_takes_the_querys_key_for_its_lines(fetch: Fetch, base_url: str,
                                                          http_client: AsyncHTTPClient) -> None:
    await fetch("create", jobid="locked", key="s3cret-key")
    body = b"jobid=locked&workid=w&current=1&total=2\njobid=locked&workid=v&current=1&total=2" \
           b"&key=wrong-key!"
    answer = await http_client.fetch(f"{base_url}/progress/updates?key=s3cret-key", method="POST",
                                     body=body, raise_error=False)
    first, second = (json.loads(line) for line in answer.body.splitlines())
    assert "version" in first and "protected by a key" in second["error"]
    assert second["status"] == 403
