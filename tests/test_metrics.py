"""`metrics`: the server's figures and opted-in jobs' summaries in Prometheus text, read back
by prometheus_client's own parser."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Fetch
from tornado_progress.snapshots import Snapshotter

ODD_ID = 'a "quoted" \\ back\nslash'


async def scrape(fetch: Fetch) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = await fetch("metrics")
    assert answer.code == 200
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(answer.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(f"tornado_progress_{name}", tuple(sorted(labels.items())))]


@pytest.mark.gen_test
async def test_the_servers_figures(fetch: Fetch, snapshotter: Snapshotter) -> None:
    for index in range(3):
        await fetch("update", jobid="j", workid=f"w{index}", current=1, total=2)
    await fetch("update", jobid="j", workid="w", current="x", total=2)
    await fetch("status", jobid="nope")
    await fetch("render", jobid="j")
    await snapshotter.save()
    samples = await scrape(fetch)
    assert value(samples, "updates_total") == 3
    assert value(samples, "refused_total", endpoint="update", status="400",
                 reason="bad_parameter") == 1
    assert value(samples, "refused_total", endpoint="status", status="404",
                 reason="not_found") == 1
    assert (value(samples, "jobs"), value(samples, "workers")) == (1, 3)
    assert value(samples, "renders_total") == 1 and value(samples, "render_seconds_total") > 0
    assert value(samples, "snapshots_total") == 1
    assert value(samples, "snapshot_last_duration_seconds") > 0
    assert value(samples, "answer_cache_bytes") > 0 and value(samples, "uptime_seconds") >= 0


@pytest.mark.gen_test
async def test_only_jobs_that_opt_in_are_shown_with_any_id(fetch: Fetch) -> None:
    await fetch("create", jobid=ODD_ID, metrics=1, workers=4)
    await fetch("update", jobid=ODD_ID, workid="w1", current=2, total=2)
    await fetch("update", jobid=ODD_ID, workid="w2", current=1, total=2, ok=0)
    await fetch("update", jobid="private", workid="w", current=1, total=2)
    samples = await scrape(fetch)
    shown = {labels for name, labels in samples if name.startswith("tornado_progress_job_")}
    assert {dict(labels)["jobid"] for labels in shown} == {ODD_ID}
    counts = {state: value(samples, "job_workers", jobid=ODD_ID, state=state)
              for state in ("running", "done", "failed", "stale", "waiting")}
    assert counts == {"running": 0, "done": 1, "failed": 1, "stale": 0, "waiting": 2}
    assert value(samples, "job_fraction", jobid=ODD_ID) == (1 + 0.5) / 4
