"""Who may write, through HTTP (issue 8, item 6 and 7): job keys, --require-key, write tokens,
server-chosen ids, new jobs per address, refusal of cross-site writes, trusted proxies, and
the show page's framing and referrer headers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.conftest import Fetch, as_json
from tornado_progress.access import TrustedProxies, bearer, parse_networks
from tornado_progress.config import Settings
from tornado_progress.limits import Limits
from tornado_progress.model import Store
from tornado_progress.request_head import Headers
from tornado_progress.snapshots import Snapshotter

# Every HTTP test runs on the fast path and through the handlers.
RUN_ON_BOTH_PATHS = True

KEY = "s3cret-key"
UPDATE = {"jobid": "j", "workid": "w", "current": 1, "total": 2}


@pytest.mark.gen_test
async def test_a_keyed_job_changes_only_with_its_key(fetch: Fetch, store: Store) -> None:
    assert (await fetch("create", jobid="j", key=KEY)).code == 200
    for endpoint, params in (("update", UPDATE), ("delete", {"jobid": "j"}),
                             ("create", {"jobid": "j"})):
        for key in ({}, {"key": "wrong-key!"}):
            answer = await fetch(endpoint, **params, **key)
            assert answer.code == 403, (endpoint, key)
            assert "protected by a key" in as_json(answer)["error"]
    assert store.get("j").write_key == KEY  # nothing changed
    assert (await fetch("update", **UPDATE, key=KEY)).code == 200
    assert (await fetch("update", **UPDATE, key=KEY, method="POST")).code == 200
    assert (await fetch("create", jobid="j", key=KEY, desc="again")).code == 200
    assert (await fetch("delete", jobid="j", key=KEY)).code == 200


@pytest.mark.gen_test
async def test_reads_never_need_the_key(fetch: Fetch) -> None:
    await fetch("update", **UPDATE, key=KEY)  # the update that creates a job protects it
    assert (await fetch("update", **UPDATE)).code == 403
    for endpoint, extra in (("status", {}), ("poll", {"since": 0}), ("show", {}),
                            ("render", {})):
        assert (await fetch(endpoint, jobid="j", **extra)).code == 200, endpoint


@pytest.mark.gen_test
async def test_a_key_must_be_8_to_256_characters(fetch: Fetch) -> None:
    for key in ("short", "k" * 257):
        answer = await fetch("create", jobid="j", key=key)
        assert answer.code == 400
        assert as_json(answer)["error"].startswith("key must be 8 to 256 characters")


@pytest.mark.gen_test
async def test_a_job_without_a_key_stays_open(fetch: Fetch) -> None:
    await fetch("create", jobid="j")
    assert (await fetch("update", **UPDATE)).code == 200
    assert (await fetch("update", **UPDATE, key=KEY)).code == 200  # an update adds no key
    assert (await fetch("update", **UPDATE)).code == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [Limits(require_key=True)])
async def test_require_key_refuses_new_jobs_without_one(fetch: Fetch, store: Store) -> None:
    for endpoint, params in (("create", {"jobid": "j"}), ("update", UPDATE)):
        answer = await fetch(endpoint, **params)
        assert answer.code == 403
        assert "--require-key" in as_json(answer)["error"]
    assert not store.jobs
    assert (await fetch("update", **UPDATE, key=KEY)).code == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"write_tokens": frozenset({"tok-1", "tok-2"})}],
                         indirect=True)
async def test_write_tokens_guard_every_write(fetch: Fetch, store: Store) -> None:
    for endpoint, params in (("create", {"jobid": "j"}), ("update", UPDATE),
                             ("delete", {"jobid": "j"})):
        missing = await fetch(endpoint, **params)
        assert missing.code == 401
        assert "--write-tokens" in as_json(missing)["error"]
        wrong = await fetch(endpoint, **params, token="tok-3")
        assert wrong.code == 401
        assert as_json(wrong)["error"] == "the token is not one this server accepts"
    assert not store.jobs
    assert (await fetch("create", jobid="j", token="tok-1")).code == 200
    assert (await fetch("update", **UPDATE, token="tok-2", method="POST")).code == 200
    assert (await fetch("update", **UPDATE,
                        headers={"Authorization": "Bearer tok-1"})).code == 200
    assert (await fetch("status", jobid="j")).code == 200  # reads stay open
    assert (await fetch("delete", jobid="j", headers={"Authorization": "Bearer tok-2"})
            ).code == 200


def test_bearer_reads_only_bearer_tokens() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None
    assert bearer("Bearer") is None
    assert bearer(None) is None


@pytest.mark.gen_test
async def test_create_without_jobid_chooses_an_unguessable_one(fetch: Fetch,
                                                               store: Store) -> None:
    ids = [as_json(await fetch("create", desc="mine"))["jobid"] for _ in range(3)]
    assert len(set(ids)) == 3
    for jobid in ids:
        assert len(jobid) >= 16  # 16 URL-safe base64 characters carry 96 bits
        assert all(c.isalnum() or c in "-_" for c in jobid)
        assert store.get(jobid).desc == "mine"


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [Limits(new_jobs_per_minute=3)])
async def test_new_jobs_per_address_are_limited(fetch: Fetch, store: Store) -> None:
    for index in range(3):
        assert (await fetch("create", jobid=f"j{index}")).code == 200
    refused = await fetch("update", jobid="j9", workid="w", current=1, total=2)
    assert refused.code == 429
    assert "--new-jobs-per-minute" in as_json(refused)["error"]
    assert "j9" not in store.jobs
    # Existing jobs are not new: their updates and re-creates go on.
    assert (await fetch("update", jobid="j0", workid="w", current=1, total=2)).code == 200
    assert (await fetch("create", jobid="j1")).code == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("header", [{"Sec-Fetch-Site": "cross-site"},
                                    {"Sec-Fetch-Site": "same-site"},
                                    {"Origin": "http://evil.example"},
                                    {"Origin": "null"}])
async def test_another_sites_page_cannot_change_jobs(fetch: Fetch, store: Store,
                                                     header: dict[str, str]) -> None:
    """An <img src=".../delete?jobid=victim"> on another site once deleted the job."""
    await fetch("create", jobid="victim")
    for endpoint, method in (("delete", "GET"), ("delete", "POST"), ("create", "GET"),
                             ("update", "POST")):
        answer = await fetch(endpoint, method=method, headers=header, **UPDATE | {
            "jobid": "victim"})
        assert answer.code == 403, (endpoint, method)
        assert "another" in as_json(answer)["error"]
    assert store.get("victim").workers == {}


@pytest.mark.gen_test
async def test_same_origin_pages_and_scripts_may_write(fetch: Fetch, base_url: str) -> None:
    host = base_url.split("://", 1)[1]
    for headers in ({}, {"Sec-Fetch-Site": "same-origin", "Origin": base_url},
                    {"Sec-Fetch-Site": "none"}, {"Origin": f"http://{host}"}):
        assert (await fetch("update", **UPDATE, headers=headers)).code == 200, headers


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"trusted_proxies": ()}], indirect=True)
@pytest.mark.parametrize("limits", [Limits(new_jobs_per_minute=1)])
async def test_proxy_headers_from_untrusted_clients_are_ignored(fetch: Fetch,
                                                                base_url: str) -> None:
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
              "X-Forwarded-Prefix": "/x", "X-Real-Ip": "10.1.1.1"}
    answer = as_json(await fetch("create", jobid="a", headers=forged))
    assert answer["show_url"] == base_url + "/progress/show?jobid=a"
    # The address is the peer's, not the forged one: a second "address" gets no new quota.
    refused = await fetch("create", jobid="b", headers=forged | {"X-Real-Ip": "10.2.2.2"})
    assert refused.code == 429
    assert "127.0.0.1" in as_json(refused)["error"]


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [Limits(new_jobs_per_minute=1)])
async def test_proxy_headers_from_trusted_proxies_are_honoured(fetch: Fetch) -> None:
    answer = as_json(await fetch("create", jobid="a", headers={
        "X-Forwarded-Host": "progress.example", "X-Forwarded-Proto": "https",
        "X-Real-Ip": "10.1.1.1"}))
    assert answer["show_url"] == "https://progress.example/progress/show?jobid=a"
    assert (await fetch("create", jobid="b", headers={"X-Real-Ip": "10.2.2.2"})).code == 200
    refused = await fetch("create", jobid="c", headers={"X-Real-Ip": "10.2.2.2"})
    assert "10.2.2.2" in as_json(refused)["error"]


ROUTED_ID = "0f" * 16  # what nginx's $request_id looks like


@pytest.mark.gen_test
async def test_a_routing_proxy_chooses_the_id_of_a_create_without_jobid(fetch: Fetch,
                                                                        store: Store) -> None:
    headers = {"X-Progress-New-Jobid": ROUTED_ID}
    answer = as_json(await fetch("create", desc="routed", headers=headers))
    assert answer["jobid"] == ROUTED_ID
    assert store.get(ROUTED_ID).desc == "routed"
    # A jobid the client gave wins; an id too short to be unguessable is not taken.
    assert as_json(await fetch("create", jobid="mine", headers=headers))["jobid"] == "mine"
    short = as_json(await fetch("create", headers={"X-Progress-New-Jobid": "42"}))["jobid"]
    assert short != "42" and len(short) >= 16


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"trusted_proxies": ()}], indirect=True)
async def test_only_a_trusted_proxy_chooses_a_created_id(fetch: Fetch) -> None:
    answer = as_json(await fetch("create", headers={"X-Progress-New-Jobid": ROUTED_ID}))
    assert answer["jobid"] != ROUTED_ID


def test_trusted_proxies_match_networks() -> None:
    proxies = TrustedProxies(parse_networks("127.0.0.0/8, ::1 10.0.0.0/24"))
    assert proxies.trusts("127.0.0.1")
    assert proxies.trusts("10.0.0.7")
    assert proxies.trusts("::1")
    assert proxies.trusts("::ffff:127.0.0.1")
    assert not proxies.trusts("10.0.1.7")
    assert not proxies.trusts("")
    assert not TrustedProxies(parse_networks("")).trusts("127.0.0.1")
    with pytest.raises(ValueError, match="not an address"):
        parse_networks("localhost")


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{}, {"frame_ancestors": "https://wiki.example"}],
                         indirect=True)
async def test_show_page_limits_framing_and_referrers(fetch: Fetch, settings: Settings) -> None:
    await fetch("create", jobid="j")
    for jobid in ("j", "unknown"):
        page = await fetch("show", jobid=jobid)
        policy = page.headers["Content-Security-Policy"]
        expected = settings.frame_ancestors
        assert policy.endswith(f"frame-ancestors {expected}")
        assert page.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.gen_test
async def test_health_says_degraded_while_snapshots_fail(fetch: Fetch,
                                                         snapshotter: Snapshotter) -> None:
    healthy = as_json(await fetch("health"))
    assert (healthy["status"], healthy["snapshot_error"]) == ("ok", None)
    snapshotter.error = "cannot write snapshots in /x: [Errno 28] No space left on device"
    degraded = as_json(await fetch("health"))
    assert degraded["status"] == "degraded"
    assert degraded["snapshot_error"] == snapshotter.error


@pytest.mark.gen_test
async def test_static_paths_no_file_can_have_get_a_sentence(
        http_client: AsyncHTTPClient, base_url: str, tmp_path: Path) -> None:
    for path in ("/progress/static/%00", "/progress/static/a%00b.css",
                 "/progress/static/nothing.js"):
        answer = await http_client.fetch(base_url + path, raise_error=False)
        assert answer.code == 404, path
        assert as_json(answer)["error"].startswith("there is no static file")


@pytest.mark.gen_test
async def test_a_key_cannot_be_added_to_an_existing_open_job(fetch: Fetch, store: Store) -> None:
    """Else anyone could re-create an open job with a key and lock its owner out."""
    await fetch("update", **UPDATE)
    answer = await fetch("create", jobid="j", key="attacker-key")
    assert answer.code == 403
    assert "exists without a key" in as_json(answer)["error"]
    assert (await fetch("update", **UPDATE)).code == 200  # the owner goes on
    assert (await fetch("delete", jobid="j")).code == 200
    assert (await fetch("create", jobid="j", key="owner-key")).code == 200  # new: protected


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"write_tokens": frozenset({"tok-1"})}], indirect=True)
async def test_secrets_never_reach_the_log(fetch: Fetch, caplog: pytest.LogCaptureFixture,
                                           settings: Settings) -> None:
    caplog.set_level(logging.INFO, "tornado.access")
    await fetch("update", jobid="j", workid="w", current="x", total=1, token="tok-1",
                key="my-secret-key")
    await fetch("update", jobid="j", workid="w", current=1, total=1, token="tok-2")
    lines = [record.getMessage() for record in caplog.records]
    assert any("/progress/update?" in line for line in lines)
    assert not any("tok-1" in line or "tok-2" in line or "my-secret-key" in line
                   for line in lines)
    assert any("token=***" in line and "key=***" in line for line in lines)


def test_a_header_is_read_by_any_case_and_a_missing_one_is_none() -> None:
    """As the server's headers (request_head.Headers) answer `get`, without an exception."""
    headers = Headers({"Origin": "https://a.example", "X-Two": "1"})
    headers.add("X-Two", "2")
    assert headers.get("origin") == "https://a.example"
    assert headers.get("x-two") == "1,2"
    assert headers.get("Sec-Fetch-Site") is None
    assert {"Origin": "o"}.get("Origin") == "o"
