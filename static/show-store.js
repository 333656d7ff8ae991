'use strict';
// The whole job as plain JS objects: an entry per worker with its last report, the workers in
// the natural order of their ids, the server's summary and clock. Applying a poll answer
// touches only the entries it names and reports what changed; nothing here touches the page,
// so that 100,000 workers cost objects, not elements.
window.ProgressStore = (() => {
  const F = window.ProgressFormat;
  const S = window.ProgressState;
  // Workers applied between two yields to the event loop, so no task grows long.
  const SLICE = 5000;
  // A `server_time` this much behind our estimate is a cached body, not the server's clock.
  const CLOCK_JITTER_S = 2;
  // Ids of printable ASCII only: their width on a line has a cheap bound (show-rows.js).
  const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

  function create(staleAfter) {
    return {
      staleAfter, jobid: '', desc: '', created: 0, updated: 0, generation: null, version: 0,
      entries: new Map(), byName: [], summary: S.EMPTY_SUMMARY, summaryAt: 0,
      localStale: 0, nextStaleCheck: Infinity, stamp: 0,
      clock: { server: 0, perf: 0 },
    };
  }

  function serverNow(store) {
    return store.clock.server + (performance.now() - store.clock.perf) / 1000;
  }

  function syncClock(store, serverTime) {
    if (!Number.isFinite(serverTime)) return;
    const estimate = serverNow(store);
    if (store.clock.perf === 0 || serverTime > estimate
        || estimate - serverTime > CLOCK_JITTER_S) {
      store.clock = { server: serverTime, perf: performance.now() };
    }
  }

  /** A worker's entry. Fields that hold fractions start as NaN, a double, so that V8 never
   * has to change the representation of 100,000 objects' fields at their first write. */
  function newEntry(workid) {
    return {
      workid, data: null, serverState: '', state: '', fraction: NaN, order: 0, seen: 0,
      key: null, search: null, ascii: PRINTABLE_ASCII.test(workid), idWidth: NaN,
      idWidthFont: -1, height: 0, heightGen: -1, dirty: true, viewGen: 0, viewIndex: -1,
    };
  }

  function newReport() {
    return { reset: false, resync: false, membership: false, states: false, fractions: false,
             descs: false, changed: 0, failed: [] };
  }

  /** Applies a poll (or status) body: the whole job when `full`, else the changed workers.
   * `pause` is awaited between slices of a big body. Resolves to what changed. */
  async function apply(store, body, pause) {
    const report = newReport();
    syncClock(store, body.server_time);
    if (body.generation !== undefined && body.generation !== store.generation) {
      if (!body.full) {  // a delta of another incarnation of the job: start again from 0
        store.version = 0;
        report.resync = true;
        return report;
      }
      if (store.generation !== null) reset(store, report);  // re-created by `create`
      store.generation = body.generation;
    }
    for (const field of ['jobid', 'desc', 'created', 'updated']) {
      if (body[field] !== undefined) store[field] = body[field];
    }
    if (body.summary) {
      store.summary = body.summary;
      store.summaryAt = serverNow(store);
    }
    await applyWorkers(store, body.workers || [], Boolean(body.full), report, pause);
    store.version = body.version;
    return report;
  }

  async function applyWorkers(store, workers, full, report, pause) {
    const now = serverNow(store);
    store.stamp += 1;
    const added = [];
    for (let start = 0; start < workers.length; start += SLICE) {
      if (start > 0) await pause();
      const end = Math.min(workers.length, start + SLICE);
      for (let i = start; i < end; i += 1) applyWorker(store, workers[i], now, added, report);
    }
    if (full && store.entries.size > workers.length) dropUnseen(store, report);
    if (full) {
      if (added.length || report.membership) useServerOrder(store, workers);
    } else if (added.length) {
      insertByName(store, added);
    }
  }

  function applyWorker(store, worker, now, added, report) {
    let entry = store.entries.get(worker.workid);
    if (entry === undefined) {
      entry = newEntry(worker.workid);
      store.entries.set(worker.workid, entry);
      added.push(entry);
      report.membership = true;
    }
    entry.seen = store.stamp;
    if (!changed(entry.data, worker)) return;
    const old = entry.data;
    if (old === null || old.desc !== worker.desc) {
      entry.search = null;
      report.descs = true;
    }
    if (worker.state === 'failed' && entry.serverState !== 'failed') {
      report.failed.push(worker.workid);
    }
    entry.data = worker;
    entry.dirty = true;
    report.changed += 1;
    const fraction = Math.min(Math.max(Number(worker.fraction) || 0, 0), 1);
    if (fraction !== entry.fraction) report.fractions = true;
    entry.fraction = fraction;
    if (setState(store, entry, worker.state, now)) report.states = true;
  }

  /** Whether a worker's report differs from the one the entry holds. */
  function changed(old, worker) {
    return old === null || old.current !== worker.current || old.total !== worker.total
      || old.desc !== worker.desc || old.ok !== worker.ok || old.updated !== worker.updated
      || old.rate !== worker.rate || old.eta_s !== worker.eta_s || old.state !== worker.state;
  }

  /** Records the server's state and the one shown now (`judge`); true if the shown one
   * changed. Keeps the count of workers the page has judged stale before the server. */
  function setState(store, entry, serverState, now) {
    if (entry.serverState === 'running' && entry.state === 'stale') store.localStale -= 1;
    entry.serverState = serverState;
    const state = S.judge(serverState, entry.data.updated, now, store.staleAfter);
    if (serverState === 'running' && state === 'stale') store.localStale += 1;
    if (state === 'running') {
      store.nextStaleCheck = Math.min(store.nextStaleCheck,
                                      entry.data.updated + store.staleAfter);
    }
    if (state === entry.state) return false;
    entry.state = state;
    entry.dirty = true;
    return true;
  }

  /**
   * Between answers: turns running workers silent for too long stale, by the one rule. Walks
   * the entries only once the earliest of them may have gone stale. Returns how many turned.
   */
  function restale(store, now) {
    if (now <= store.nextStaleCheck) return 0;
    let turned = 0;
    store.nextStaleCheck = Infinity;
    for (const entry of store.entries.values()) {
      if (entry.state === 'running' && setState(store, entry, entry.serverState, now)) {
        turned += 1;
      }
    }
    return turned;
  }

  /** The summary as it stands now: the server's, with the page's stale judgements. */
  function summary(store) {
    return S.shownSummary(store.summary, store.localStale);
  }

  function reset(store, report) {
    store.entries.clear();
    store.byName = [];
    store.localStale = 0;
    store.nextStaleCheck = Infinity;
    store.summary = S.EMPTY_SUMMARY;
    report.reset = true;
    report.membership = true;
  }

  function dropUnseen(store, report) {
    for (const [workid, entry] of store.entries) {
      if (entry.seen !== store.stamp) {
        if (entry.serverState === 'running' && entry.state === 'stale') store.localStale -= 1;
        store.entries.delete(workid);
        report.membership = true;
      }
    }
  }

  /** A whole body comes in the natural order (views.full_body sorts by the same rule). */
  function useServerOrder(store, workers) {
    store.byName = workers.map((worker) => store.entries.get(worker.workid));
    numberByName(store);
  }

  /** New workers of a delta, each put in its place by name with a binary search. */
  function insertByName(store, added) {
    added.sort((a, b) => F.compareKeys(keyOf(a), keyOf(b)));
    const old = store.byName;
    const merged = [];
    let from = 0;
    for (const entry of added) {
      const at = searchName(old, entry, from);
      while (from < at) merged.push(old[from++]);
      merged.push(entry);
    }
    while (from < old.length) merged.push(old[from++]);
    store.byName = merged;
    numberByName(store);
  }

  function searchName(list, entry, low) {
    const key = keyOf(entry);
    let high = list.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (F.compareKeys(keyOf(list[middle]), key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  function keyOf(entry) {
    if (entry.key === null) entry.key = F.naturalKey(entry.workid);
    return entry.key;
  }

  function numberByName(store) {
    const list = store.byName;
    for (let i = 0; i < list.length; i += 1) list[i].order = i;
  }

  return { create, apply, restale, summary, serverNow, syncClock };
})();
