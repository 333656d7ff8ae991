"""The home page at /progress/ (and / redirected to it): what the service is, lines to copy
with this server's own address, a box to open a job; with --list-jobs, the jobs and the `jobs`
endpoint that keeps the list live."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from . import views
from .handlers import ApiHandler
from .model import ModelError
from .pages import PageHandler

# Jobs listed at most, the latest changed first: each one costs a summary.
LISTED_JOBS = 50
# A job id and worker id shown in the copy-paste lines.
EXAMPLE_JOB = "myjob"


def examples(server: str) -> dict[str, str]:
    """Shell and Python lines that report to `server` (the base URL, no trailing slash)."""
    progress = f"{server}/progress"
    shell = (
        "# once, before the workers start (optional; workers= is how many to expect):\n"
        f'curl "{progress}/create?jobid={EXAMPLE_JOB}&desc=My+reduction&workers=4"\n'
        "# in each worker, as it goes:\n"
        f'curl "{progress}/update?jobid={EXAMPLE_JOB}&workid=$HOSTNAME-$$&current=5&total=22"\n'
        "# right after the worker's program: its exit status 0 is ok, any other is drawn red\n"
        f'curl "{progress}/update?jobid={EXAMPLE_JOB}&workid=$HOSTNAME-$$&current=22&total=22'
        '&exit=$?"\n'
        "# text with spaces: let curl encode it (-G sends a GET)\n"
        f'curl -G "{progress}/update" --data-urlencode "jobid={EXAMPLE_JOB}" \\\n'
        '     --data-urlencode "workid=w1" -d current=5 -d total=22 '
        '--data-urlencode "desc=lots of RFI"')
    python = (
        "import requests\n"
        f'requests.post("{progress}/update",\n'
        f'              data={{"jobid": "{EXAMPLE_JOB}", "workid": "w1", "current": 5, '
        '"total": 22})\n\n'
        "# or with this package (pip install tornado_progress): never blocks, never raises\n"
        "from tornado_progress.client import Reporter\n"
        f'with Reporter("{server}", "{EXAMPLE_JOB}", "w1") as report:\n'
        "    for done, item in enumerate(items, 1):\n"
        "        work(item)\n"
        "        report.update(done, len(items))")
    return {"shell": shell, "python": python}


def job_entry(job: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """One job of the `jobs` answer and of the home page's list."""
    return {"jobid": job.jobid, "desc": job.desc, "created": job.created,
            "updated": job.updated, "version": job.version, "summary": summary,
            "show_path": "show?jobid=" + quote(job.jobid, safe="")}


class RootRedirect(ApiHandler):
    """`/` leads to the home page (a relative Location: right behind a prefixing proxy too)."""

    def respond(self) -> None:
        self.redirect("progress/")


class ListedJobs(ApiHandler):
    """The jobs the home page and `jobs` list, when the server lists them."""

    async def listed(self) -> list[dict[str, Any]]:
        now = self.store.clock()
        return [job_entry(job, await self.bodies.summary(job, now))
                for job in self.store.recent(LISTED_JOBS)]


class HomeHandler(PageHandler, ListedJobs):
    async def respond(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.page_headers()
        server = self.absolute_url("")
        self.render("home.html", lines=examples(server), list_jobs=self.config.list_jobs,
                    jobs=await self.listed() if self.config.list_jobs else [],
                    percent=views.percent, listed_most=LISTED_JOBS)


class JobsHandler(ListedJobs):
    async def respond(self) -> None:
        if not self.config.list_jobs:
            raise JobsNotListed()
        self.set_header("Cache-Control", "no-store")
        self.write_json({"server_time": self.store.clock(), "jobs": await self.listed()})


class JobsNotListed(ModelError):
    status = 404

    def __init__(self) -> None:
        super().__init__("this server does not list its jobs, since a job's id may be all that "
                         "keeps it private; its operator can turn the list on with the option "
                         "--list-jobs")
