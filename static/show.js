'use strict';
// The live show page: applies the job JSON that the page carries, then follows the job by long
// polling (show-connection.js). The whole job lives in JS objects (show-store.js); the list
// draws only the rows in view (show-window.js). The header shows the server's summary, with
// the page's own stale judgements between answers; ages, ETAs and stale marks move every
// second on the server's clock, touching only rows in view.
(() => {
  const F = window.ProgressFormat;
  const S = window.ProgressState;
  const Store = window.ProgressStore;
  const Win = window.ProgressWindow;
  const Details = window.ProgressDetails;
  const News = window.ProgressNews;
  const Connection = window.ProgressConnection;
  const Prefs = window.ProgressPrefs;
  const Theme = window.ProgressTheme;
  // Jobs bigger than this filter as one types only after a short pause.
  const FILTER_DEBOUNCE_FROM = 5000;
  const FILTER_DEBOUNCE_MS = 150;

  const $ = (id) => document.getElementById(id);
  const root = $('show');
  const store = Store.create(Number(root.dataset.staleAfter));
  const page = {
    win: null, details: null, news: null, connection: null,
    filter: '', chips: new Set(), sortChoice: 'auto', sort: 'name',
    viewDirty: 'full', frame: 0, applying: null, gone: false, first: true,
  };
  // Figures for the tests and bench/browser_bench.py.
  const stats = {
    applies: 0, lastApplyMs: 0, maxApplyMs: 0, startedAt: 0, shownAt: 0, renders: 0, ticks: 0,
    maxTickMs: 0, liveAt: 0,
  };

  /** Lets the browser run other tasks (input, frames) between pieces of a big job's work:
   * scheduler.yield where there is one, else a message to ourselves (setTimeout would wait
   * 4 ms each time). */
  function pause() {
    if (window.scheduler && typeof window.scheduler.yield === 'function') {
      return window.scheduler.yield();
    }
    return new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => resolve();
      channel.port2.postMessage(null);
    });
  }

  /** Applies one poll (or status) body, after any still being applied. */
  function apply(body) {
    const run = () => applyNow(body);
    page.applying = (page.applying || Promise.resolve()).then(run, run);
    return page.applying;
  }

  async function applyNow(body) {
    const started = performance.now();
    const before = page.sort;
    const report = await Store.apply(store, body, pause);
    if (report.resync) return;
    if (report.reset) Details.close(page.details);
    if (page.gone) setGone(false);
    const summary = Store.summary(store);
    page.sort = S.effectiveSort(page.sortChoice, summary);
    markView(report, before !== page.sort);
    if (page.details.entry) Details.write(page.details, Store.serverNow(store));
    News.update(page.news, report, summary, jobName(), page.first);
    page.first = false;
    renderHeader(Store.serverNow(store));
    scheduleRender();
    const took = performance.now() - started;
    stats.applies += 1;
    stats.lastApplyMs = took;
    stats.maxApplyMs = Math.max(stats.maxApplyMs, took);
  }

  /** Decides whether the list's order or members may have changed: 'full' to filter and
   * sort again, 'resort' to sort the same members again. */
  function markView(report, sortChanged) {
    const depends = S.sortDependsOn(page.sort);
    const filtered = page.filter.trim() !== '' || page.chips.size > 0;
    if (report.membership || sortChanged || (filtered && (report.states || report.descs))) {
      page.viewDirty = 'full';
    } else if ((depends.states && report.states) || (depends.fractions && report.fractions)) {
      page.viewDirty = page.viewDirty || 'resort';
    }
  }

  function rebuildView() {
    const compare = S.comparator(page.sort);
    let view;
    if (page.viewDirty === 'resort') {
      view = page.win.view.slice().sort(compare);  // nearly sorted already: close to linear
    } else {
      const match = S.matcher(page.filter, page.chips);
      view = match ? store.byName.filter(match) : store.byName;
      if (page.sort !== 'name') view = (view === store.byName ? view.slice() : view).sort(compare);
    }
    page.viewDirty = null;
    Win.setView(page.win, view);
    $('workers-table').setAttribute('aria-rowcount', String(view.length + 1));  // + headers
    renderListText();
  }

  function scheduleRender() {
    if (!page.frame) page.frame = requestAnimationFrame(renderFrame);
  }

  function renderFrame() {
    page.frame = 0;
    if (page.viewDirty) rebuildView();
    Win.render(page.win, Store.serverNow(store));
    stats.renders += 1;
    if (!stats.shownAt && store.entries.size) stats.shownAt = performance.now();
  }

  function jobName() {
    return store.desc || store.jobid;
  }

  function renderHeader(now) {
    const summary = Store.summary(store);
    const pct = F.percent(summary.fraction);
    setText($('job-desc'), jobName());
    setText($('job-id'), store.jobid);
    const overall = $('overall-bar');
    overall.style.setProperty('--f', String(summary.fraction));
    setAttr(overall, 'aria-valuenow', String(pct));
    setText($('overall-percent'), `${pct}%`);
    for (const key of ['running', 'stale', 'done', 'failed', 'waiting']) {
      setText($(`count-${key}`), F.count(summary[key]));
    }
    renderTimes(now, summary);
    renderSortLabel(summary);
    const title = News.title(summary, jobName(), page.gone);
    if (document.title !== title) document.title = title;
  }

  function renderTimes(now, summary) {
    const running = summary.running + summary.stale;
    const active = running || summary.waiting || !summary.workers;
    // A job with nobody running any more took from its creation to its last report.
    const end = active ? now : store.updated;
    setText($('elapsed-label'), active ? 'Elapsed' : 'Took');
    setText($('elapsed'), F.duration(end - store.created));
    let eta = '—';
    let finish = '';
    if (S.finished(summary)) {
      eta = summary.failed ? 'stopped' : 'done';
    } else if (summary.running && !Number.isFinite(summary.eta_s)) {
      finish = 'estimating';  // a running worker has no speed yet, or some have not started
    } else if (summary.running) {
      const left = Math.max(0, summary.eta_s - (now - store.summaryAt));
      eta = left < 1 ? 'due' : F.duration(left);
      finish = `at ${F.clockTime(now + left)}`;
    }
    setText($('eta'), eta);
    setText($('eta-clock'), finish);
  }

  /** The worker count, and the sentence shown when the list is empty. */
  function renderListText() {
    const total = store.entries.size;
    const shown = page.win.view.length;
    const expected = store.summary.expected || 0;
    let text = `${F.count(total)} worker${total === 1 ? '' : 's'}`;
    if (expected > total) text += ` of ${F.count(expected)} expected`;
    if (shown !== total) text = `Showing ${F.count(shown)} of ${text}`;
    setText($('worker-count'), text);
    const empty = $('empty');
    empty.hidden = shown > 0;
    $('workers-table').hidden = shown === 0;
    if (shown === 0) setText(empty, emptySentence(total));
  }

  function emptySentence(total) {
    const waiting = store.summary.waiting || 0;
    if (page.chips.has('waiting') && waiting) {
      return `${F.count(waiting)} expected worker${waiting === 1 ? ' has' : 's have'} not `
        + 'reported yet: a worker gets its row with its first update.';
    }
    if (!total) {
      return 'No worker has reported yet: rows appear here with each worker\'s first update.';
    }
    return 'No worker matches the filter.';
  }

  function renderSortLabel(summary) {
    const auto = $('sort').querySelector('option[value="auto"]');
    const wanted = S.effectiveSort('auto', summary) === 'problems'
      ? 'automatic: problems first' : 'automatic: by name';
    setText(auto, wanted);
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  function setAttr(element, name, value) {
    if (element.getAttribute(name) !== value) element.setAttribute(name, value);
  }

  /** Every second, timed for the tests. */
  function tick() {
    const started = performance.now();
    clockTick();
    stats.ticks += 1;
    stats.maxTickMs = Math.max(stats.maxTickMs, performance.now() - started);
  }

  /** Stale marks by the one rule, then ages and ETAs of the rows in view, the header, the
   * open details and the reconnect countdown. */
  function clockTick() {
    const now = Store.serverNow(store);
    if (Store.restale(store, now)) {
      markView({ states: true }, false);
      const summary = Store.summary(store);
      const sort = S.effectiveSort(page.sortChoice, summary);
      if (sort !== page.sort) {
        page.sort = sort;
        page.viewDirty = 'full';
      }
      scheduleRender();
    }
    Win.refreshClock(page.win, now);
    renderHeader(now);
    if (page.details.entry) Details.write(page.details, now);
    renderConnection();
  }

  function onConnection(state, retryAt, changed) {
    page.connectionState = state;
    page.retryAt = retryAt;
    if (changed && state === 'lost') News.say(page.news, 'Connection to the server lost.');
    if (changed && state === 'live') {
      stats.liveAt = performance.now();
      News.say(page.news, 'Connection to the server restored.');
    }
    if (changed && state === 'gone' && !page.gone) setGone(true);
    renderConnection();
  }

  function renderConnection() {
    const state = page.connectionState || 'live';
    $('connection').dataset.state = state;
    $('retry').hidden = state !== 'lost';
    let text = 'Live';
    if (state === 'lost') {
      const seconds = Math.max(0, Math.ceil((page.retryAt - performance.now()) / 1000));
      text = seconds ? `Connection lost · retrying in ${seconds} s` : 'Connection lost · retrying';
    } else if (state === 'gone') {
      text = 'Waiting for the job';
    }
    setText($('connection-text'), text);
  }

  function setGone(gone) {
    page.gone = gone;
    root.classList.toggle('is-gone', gone);
    $('notice').hidden = !gone;
    renderHeader(Store.serverNow(store));
  }

  function setSort(choice) {
    page.sortChoice = S.SORTS.includes(choice) ? choice : 'auto';
    $('sort').value = page.sortChoice;
    page.sort = S.effectiveSort(page.sortChoice, Store.summary(store));
    page.viewDirty = 'full';
    scheduleRender();
  }

  function setFilter(text) {
    page.filter = text;
    page.viewDirty = 'full';
    scheduleRender();
  }

  function toggleChip(button) {
    const state = button.dataset.state;
    if (page.chips.has(state)) page.chips.delete(state);
    else page.chips.add(state);
    button.setAttribute('aria-pressed', String(page.chips.has(state)));
    page.viewDirty = 'full';
    scheduleRender();
  }

  function setCompact(compact) {
    root.classList.toggle('is-compact', compact);
    $('density').setAttribute('aria-pressed', String(compact));
  }

  function renderTheme() {
    $('theme').setAttribute('aria-pressed', String(Theme.effective() === 'dark'));
  }

  function wireControls() {
    let timer = 0;
    $('filter').addEventListener('input', (event) => {
      clearTimeout(timer);
      const text = event.target.value;
      if (store.entries.size < FILTER_DEBOUNCE_FROM) setFilter(text);
      else timer = setTimeout(() => setFilter(text), FILTER_DEBOUNCE_MS);
    });
    for (const chip of document.querySelectorAll('.chip')) {
      chip.disabled = false;
      chip.addEventListener('click', () => toggleChip(chip));
    }
    $('sort').addEventListener('change', (event) => {
      Prefs.set('sort', event.target.value === 'auto' ? null : event.target.value);
      setSort(event.target.value);
    });
    $('density').addEventListener('click', () => {
      const compact = !root.classList.contains('is-compact');
      Prefs.set('density', compact ? 'compact' : null);
      setCompact(compact);
    });
    $('theme').addEventListener('click', () => { Theme.toggle(); renderTheme(); });
    Theme.onSystemChange(renderTheme);
    $('retry').addEventListener('click', () => Connection.retryNow(page.connection));
  }

  /** The layout changed (a resize, the density, the theme's fonts): heights and label
   * places are worked out again. */
  function watchLayout() {
    const probe = page.win.probe;
    const observer = new ResizeObserver(() => {
      if (Win.readLayout(page.win)) {
        for (const entry of store.entries.values()) entry.dirty = true;
      }
      scheduleRender();
    });
    for (const element of [probe.el, probe.idText, probe.bar]) observer.observe(element);
    window.addEventListener('scroll', scheduleRender, { passive: true });
    window.addEventListener('resize', scheduleRender, { passive: true });
  }

  function openDetails(entry) {
    Details.open(page.details, entry, Store.serverNow(store));
  }

  function detailsClosed(entry) {
    const index = Win.indexOf(page.win, entry);
    if (index >= 0) Win.focusIndex(page.win, index);
  }

  async function start() {
    stats.startedAt = performance.now();
    page.win = Win.create($('workers'), openDetails);
    page.details = Details.create($('details'), detailsClosed);
    page.news = News.create($('announcer'), $('notify'));
    page.sortChoice = S.SORTS.includes(Prefs.get('sort')) ? Prefs.get('sort') : 'auto';
    $('sort').value = page.sortChoice;
    setCompact(Prefs.get('density') === 'compact');
    renderTheme();
    wireControls();
    const initial = JSON.parse($('initial-job').textContent);
    store.jobid = initial.jobid;
    // A big job comes in pieces (pages.py), each parsed in a task of its own.
    for (const part of document.querySelectorAll('script.initial-workers')) {
      await pause();
      for (const worker of JSON.parse(part.textContent)) initial.workers.push(worker);
    }
    await apply(initial);
    root.classList.add('is-live');
    watchLayout();
    setInterval(tick, 1000);
    page.connection = Connection.create(
      () => `jobid=${encodeURIComponent(store.jobid)}&since=${store.version}`, apply,
      onConnection);
    Connection.follow(page.connection);
  }

  window.progressPage = {
    apply, stats, setSort,
    workerCount: () => store.entries.size,
    renderedRows: () => Win.rendered(page.win),
    shownCount: () => page.win.view.length,
  };
  start();
})();
