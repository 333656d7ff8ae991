'use strict';
// The rules of worker states on the show page. The server judges every worker's state and the
// job's summary; between its answers the page re-judges one thing, staleness, with `judge`
// below. Also here: what each state is called and marked with, and the orders and filters
// the list offers. Pure functions, no DOM.
window.ProgressState = (() => {
  const STATES = ['running', 'stale', 'done', 'failed'];
  // A state is never told by colour alone: a word and a glyph go with it everywhere.
  const WORDS = {
    running: 'running', stale: 'stale', done: 'done', failed: 'failed', waiting: 'not started',
  };
  const GLYPHS = { running: '▸', stale: '…', done: '✓', failed: '✗', waiting: '○' };
  const PROBLEM_RANK = { failed: 0, stale: 1, running: 2, done: 3 };
  const SORTS = ['auto', 'name', 'problems', 'progress', 'progress-desc'];
  const EMPTY_SUMMARY = {
    workers: 0, expected: null, waiting: 0, running: 0, done: 0, failed: 0, stale: 0,
    fraction: 0, eta_s: null,
  };

  /**
   * The state to show for a worker the server judged `serverState` at its last answer: a
   * running worker silent for longer than `staleAfter` seconds (on the server's clock) is
   * stale, exactly as the server would say now; every other state stays the server's.
   */
  function judge(serverState, updated, now, staleAfter) {
    if (serverState === 'running' && now - updated > staleAfter) return 'stale';
    return STATES.includes(serverState) ? serverState : 'running';
  }

  /** The server's summary with the workers the page has since judged stale moved over. */
  function shownSummary(summary, localStale) {
    return { ...summary, running: summary.running - localStale,
             stale: summary.stale + localStale };
  }

  /** A job whose every worker is done or failed, with none of the expected ones waiting. */
  function finished(summary) {
    return summary.workers > 0 && summary.running + summary.stale + summary.waiting === 0;
  }

  /** The order to use: the user's, or for "auto" problems first while any worker failed or
   * went stale, else by name. */
  function effectiveSort(choice, summary) {
    if (choice !== 'auto') return choice;
    return summary.failed + summary.stale > 0 ? 'problems' : 'name';
  }

  /** Compares two entries of the store for a sort; `order` is their place by name. */
  function comparator(sort) {
    switch (sort) {
      case 'problems':
        return (a, b) => PROBLEM_RANK[a.state] - PROBLEM_RANK[b.state] || a.order - b.order;
      case 'progress': return (a, b) => a.fraction - b.fraction || a.order - b.order;
      case 'progress-desc': return (a, b) => b.fraction - a.fraction || a.order - b.order;
      default: return (a, b) => a.order - b.order;
    }
  }

  /** Whether an order depends on states, on fractions, or on names only. */
  function sortDependsOn(sort) {
    return { states: sort === 'problems', fractions: sort.startsWith('progress') };
  }

  /**
   * A predicate for the entries to list, or null for all of them: the text is looked for,
   * case-insensitively, in the id and the desc; `chips` is a set of states (the "waiting"
   * chip matches no row, since workers not heard from have none).
   */
  function matcher(text, chips) {
    const needle = text.trim().toLowerCase();
    if (!needle && chips.size === 0) return null;
    return (entry) => (chips.size === 0 || chips.has(entry.state))
      && (!needle || searchText(entry).includes(needle));
  }

  function searchText(entry) {
    if (entry.search === null) {
      entry.search = `${entry.workid}\n${entry.data.desc}`.toLowerCase();
    }
    return entry.search;
  }

  return {
    STATES, WORDS, GLYPHS, SORTS, EMPTY_SUMMARY, judge, shownSummary, finished,
    effectiveSort, comparator, sortDependsOn, matcher,
  };
})();
