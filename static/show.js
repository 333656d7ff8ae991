'use strict';
// The live show page: applies the job JSON that the page carries, then follows the job by long
// polling `poll`, touching only the rows that changed. Ages, ETAs and stale marks move every
// second on the server's clock (offset from its `server_time`), without any request.
(() => {
  const F = window.ProgressFormat;
  const Rows = window.ProgressRows;
  const POLL_TIMEOUT_S = 25;
  // A poll still unanswered this long after its timeout hangs on a dead connection.
  const POLL_SLACK_MS = 15000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  // While the job is unknown (deleted, expired), how often to look whether it came back.
  const GONE_RETRY_MS = 5000;
  // A `server_time` this much behind our estimate is a cached body, not the server's clock.
  const CLOCK_JITTER_S = 2;
  const SORTS = ['name', 'progress', 'progress-desc', 'problems'];
  const PROBLEM_RANK = { failed: 0, stale: 1, ok: 2, done: 2 };

  const $ = (id) => document.getElementById(id);
  const root = $('show');
  const list = $('workers');
  const staleAfter = Number(root.dataset.staleAfter);

  const state = {
    jobid: '', desc: '', created: 0, updated: 0, generation: null, version: 0, expected: 0,
    entries: new Map(),  // workid -> entry of show-rows.js
    sort: 'name', barWidth: 0, gone: false,
    clock: { server: 0, perf: 0 },
    connection: { state: 'live', retryAt: 0 },
  };
  // Figures for the measurements in bench/browser_bench.py.
  const stats = { applies: 0, lastApplyMs: 0, maxApplyMs: 0 };

  function serverNow() {
    return state.clock.server + (performance.now() - state.clock.perf) / 1000;
  }

  function syncClock(serverTime) {
    if (!Number.isFinite(serverTime)) return;
    const estimate = serverNow();
    if (state.clock.perf === 0 || serverTime > estimate || estimate - serverTime > CLOCK_JITTER_S) {
      state.clock = { server: serverTime, perf: performance.now() };
    }
  }

  /** Applies one poll (or status) body: the whole job when `full`, else the changed workers. */
  function apply(body) {
    const started = performance.now();
    syncClock(body.server_time);
    if (body.generation !== undefined && body.generation !== state.generation) {
      if (!body.full) {  // a delta of another incarnation of the job: start again from 0
        state.version = 0;
        return;
      }
      if (state.generation !== null) dropRows();  // re-created by `create`: start afresh
      state.generation = body.generation;
    }
    if (state.gone) setGone(false);
    if (body.desc !== undefined) state.desc = body.desc;
    if (body.summary) state.expected = body.summary.expected || 0;
    if (body.jobid !== undefined) state.jobid = body.jobid;
    if (body.created !== undefined) state.created = body.created;
    if (body.updated !== undefined) state.updated = body.updated;
    const needsSort = applyWorkers(body.workers || [], Boolean(body.full));
    state.version = body.version;
    if (needsSort) reorder();
    renderHeader(serverNow());
    const took = performance.now() - started;
    stats.applies += 1;
    stats.lastApplyMs = took;
    stats.maxApplyMs = Math.max(stats.maxApplyMs, took);
  }

  /** Creates or rewrites the rows of `workers`; with `full`, drops those not listed. True
   * when the order of rows may have to change. */
  function applyWorkers(workers, full) {
    const now = serverNow();
    const seen = full ? new Set() : null;
    let added = false;
    let moved = false;
    for (const worker of workers) {
      if (seen) seen.add(worker.workid);
      let entry = state.entries.get(worker.workid);
      if (entry === undefined) {
        entry = Rows.create(worker);
        state.entries.set(worker.workid, entry);
        added = true;
      } else if (!Rows.changed(entry, worker)) {
        continue;
      }
      moved = Rows.write(entry, worker, now, staleAfter, state.barWidth) || moved;
    }
    if (seen && seen.size < state.entries.size) {
      for (const [workid, entry] of state.entries) {
        if (!seen.has(workid)) {
          entry.row.remove();
          state.entries.delete(workid);
        }
      }
    }
    return added || (moved && state.sort !== 'name');
  }

  function dropRows() {
    list.replaceChildren();
    state.entries.clear();
  }

  function comparator() {
    const byName = (a, b) => F.compareNames(a.workid, b.workid);
    switch (state.sort) {
      case 'progress': return (a, b) => a.fraction - b.fraction || byName(a, b);
      case 'progress-desc': return (a, b) => b.fraction - a.fraction || byName(a, b);
      case 'problems':
        return (a, b) => PROBLEM_RANK[a.state] - PROBLEM_RANK[b.state] || byName(a, b);
      default: return byName;
    }
  }

  /** Puts the rows in the chosen order, moving only those out of place (new rows go in here). */
  function reorder() {
    const sorted = [...state.entries.values()].sort(comparator());
    let cursor = list.firstElementChild;
    for (const entry of sorted) {
      if (entry.row === cursor) cursor = cursor.nextElementSibling;
      else list.insertBefore(entry.row, cursor);
    }
  }

  /** Counts, overall fraction and ETA from the rows, by the server's rules. The ETA is the
   * slowest running worker's, unknown while one of them has no speed yet; stale workers do
   * not count, since their ETA says nothing any more. */
  function summarise(now) {
    const counts = { ok: 0, stale: 0, done: 0, failed: 0 };
    let fractionSum = 0;
    let eta = 0;
    for (const entry of state.entries.values()) {
      counts[entry.state] += 1;
      fractionSum += entry.fraction;
      if (entry.state === 'ok') {
        const left = Rows.remaining(entry, now);
        eta = left === null || eta === null ? null : Math.max(eta, left);
      }
    }
    const total = state.entries.size;
    // Workers the job expects but has not heard from count as 0 % and leave the ETA unknown.
    const over = Math.max(total, state.expected);
    return { counts, total, fraction: over ? fractionSum / over : 0,
             eta: over > total ? null : eta };
  }

  function renderHeader(now) {
    const summary = summarise(now);
    const pct = F.percent(summary.fraction);
    const name = state.desc || state.jobid;
    setText($('job-desc'), name);
    setText($('job-id'), state.jobid);
    const overall = $('overall-bar');
    overall.style.setProperty('--f', String(summary.fraction));
    overall.setAttribute('aria-valuenow', String(pct));
    setText($('overall-percent'), `${pct}%`);
    for (const key of ['ok', 'stale', 'done', 'failed']) {
      setText($(`count-${key}`), String(summary.counts[key]));
    }
    const workers = `${F.count(summary.total)} worker${summary.total === 1 ? '' : 's'}`;
    setText($('worker-count'), state.expected > summary.total
      ? `${workers} of ${F.count(state.expected)} expected` : workers);
    $('empty').hidden = summary.total > 0;
    $('columns').hidden = summary.total === 0;
    renderTimes(now, summary);
    const title = `${pct}% ${name}`;
    const wanted = state.gone ? `Deleted · ${title}` : title;
    if (document.title !== wanted) document.title = wanted;
  }

  function renderTimes(now, summary) {
    const running = summary.counts.ok + summary.counts.stale;
    // A job with nobody running any more took from its creation to its last report.
    const end = running || !summary.total ? now : state.updated;
    setText($('elapsed-label'), running || !summary.total ? 'Elapsed' : 'Took');
    setText($('elapsed'), F.duration(end - state.created));
    let eta = '—';
    let finish = '';
    if (summary.total && !running) {
      eta = summary.counts.failed ? 'stopped' : 'done';
    } else if (summary.counts.ok && summary.eta === null) {
      finish = 'estimating';  // a running worker has no speed yet
    } else if (summary.counts.ok) {
      eta = summary.eta < 1 ? 'due' : F.duration(summary.eta);
      finish = `at ${F.clockTime(now + summary.eta)}`;
    }
    setText($('eta'), eta);
    setText($('eta-clock'), finish);
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  /** Every second: ages, ETAs and stale marks, the header, and the reconnect countdown. */
  function tick() {
    const now = serverNow();
    let stateChanged = false;
    for (const entry of state.entries.values()) {
      stateChanged = Rows.refresh(entry, now, staleAfter) || stateChanged;
    }
    if (stateChanged && state.sort !== 'name') reorder();
    renderHeader(now);
    renderConnection();
  }

  function setConnection(connectionState, retryInMs = 0) {
    state.connection = { state: connectionState, retryAt: performance.now() + retryInMs };
    renderConnection();
  }

  function renderConnection() {
    const { state: connectionState, retryAt } = state.connection;
    const element = $('connection');
    element.dataset.state = connectionState;
    let text = 'Live';
    if (connectionState === 'lost') {
      const seconds = Math.max(0, Math.ceil((retryAt - performance.now()) / 1000));
      text = seconds ? `Connection lost · retrying in ${seconds} s` : 'Connection lost · retrying';
    } else if (connectionState === 'gone') {
      text = 'Waiting for the job';
    }
    setText($('connection-text'), text);
  }

  function setGone(gone) {
    state.gone = gone;
    root.classList.toggle('is-gone', gone);
    $('notice').hidden = !gone;
    renderHeader(serverNow());
  }

  let wakeUp = null;
  /** A pause that a return of the network ends early. */
  function pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wakeUp = () => { clearTimeout(timer); resolve(); };
    }).finally(() => { wakeUp = null; });
  }

  /** One long poll: 'ok' once applied, 'gone' for a 404, 'error' when the server can't be
   * reached or answers an error. */
  async function pollOnce() {
    const query = `jobid=${encodeURIComponent(state.jobid)}&since=${state.version}`
      + `&timeout=${POLL_TIMEOUT_S}`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), POLL_TIMEOUT_S * 1000 + POLL_SLACK_MS);
    let body;
    try {
      const response = await fetch(`poll?${query}`, {
        cache: 'no-store', signal: controller.signal, headers: { Accept: 'application/json' },
      });
      if (response.status === 404) return 'gone';
      if (!response.ok) return 'error';
      body = await response.json();
    } catch (error) {
      return 'error';  // network down, server restarting, or a body cut short
    } finally {
      clearTimeout(timer);
    }
    apply(body);
    return 'ok';
  }

  async function pollForever() {
    let failures = 0;
    for (;;) {
      let outcome;
      try {
        outcome = await pollOnce();
      } catch (error) {
        reportError(error);  // a bug in applying a body: say it, then resynchronise
        outcome = 'error';
      }
      if (outcome === 'ok') {
        failures = 0;
        if (state.connection.state !== 'live') setConnection('live');
        continue;
      }
      // Whatever was missed, the next answer brings the whole job again (since=0).
      state.version = 0;
      if (outcome === 'gone') {
        failures = 0;
        if (!state.gone) setGone(true);
        setConnection('gone');
        await pause(GONE_RETRY_MS);
        continue;
      }
      failures += 1;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (failures - 1))
        * (0.8 + 0.4 * Math.random());  // jitter, so that many pages don't retry in step
      setConnection('lost', delay);
      await pause(delay);
    }
  }

  function setSort(sort) {
    state.sort = SORTS.includes(sort) ? sort : 'name';
    $('sort').value = state.sort;
    const hash = state.sort === 'name' ? '' : `#sort=${state.sort}`;
    if (location.hash !== hash) {
      history.replaceState(null, '', hash || location.pathname + location.search);
    }
    reorder();
  }

  /** Labels go inside or beside the fill by pixels, so they follow the bars' width. */
  function watchBarWidth() {
    const observer = new ResizeObserver((records) => {
      const width = records[records.length - 1].contentRect.width;
      if (width <= 0 || width === state.barWidth) return;
      state.barWidth = width;
      for (const entry of state.entries.values()) Rows.placeLabel(entry, width);
    });
    observer.observe($('column-bar'));
  }

  function start() {
    Rows.init(list);
    const initial = JSON.parse($('initial-job').textContent);
    state.jobid = initial.jobid;
    const fromHash = /^#sort=([a-z-]+)$/.exec(location.hash);
    state.sort = fromHash && SORTS.includes(fromHash[1]) ? fromHash[1] : 'name';
    $('sort').value = state.sort;
    $('sort').addEventListener('change', (event) => setSort(event.target.value));
    apply(initial);
    root.classList.add('is-live');
    watchBarWidth();
    setInterval(tick, 1000);
    window.addEventListener('online', () => { if (wakeUp) wakeUp(); });
    pollForever();
  }

  window.progressPage = { apply, stats, setSort, workerCount: () => state.entries.size };
  start();
})();
