'use strict';
// The home page's list of jobs (servers run with --list-jobs): refreshed from `jobs` every
// few seconds while the page is visible. Every string goes in as text.
(() => {
  const F = window.ProgressFormat;
  const REFRESH_MS = 3000;
  const body = document.getElementById('jobs');
  const empty = document.getElementById('no-jobs');

  function cell(row, text) {
    const td = document.createElement('td');
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function show(jobs) {
    const rows = jobs.map((job) => {
      const row = document.createElement('tr');
      const link = document.createElement('a');
      link.href = job.show_path;
      link.textContent = job.desc || job.jobid;
      cell(row, '').appendChild(link);
      cell(row, `${F.percent(job.summary.fraction)}%`);
      cell(row, String(job.summary.workers));
      cell(row, String(job.summary.failed));
      return row;
    });
    body.replaceChildren(...rows);
    empty.hidden = jobs.length > 0;
  }

  async function refresh() {
    if (document.visibilityState === 'visible') {
      try {
        const answer = await fetch('jobs', { cache: 'no-store' });
        if (answer.ok) show((await answer.json()).jobs);
      } catch (error) {
        // The server is away for a moment: the list stays as it was until the next refresh.
      }
    }
    setTimeout(refresh, REFRESH_MS);
  }

  setTimeout(refresh, REFRESH_MS);
})();
