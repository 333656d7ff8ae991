'use strict';
// Following the job: long polls of `poll` from the last version seen, one after another. When
// the server cannot be reached, the page probes `health` (a HEAD, the cheapest answer there
// is) at growing intervals capped at 1.5 s, then polls once without waiting (timeout=0), so
// that it is live again within 2 s of the server; "Retry now" or the network coming back cut
// the wait short. A job that is gone (404) is looked for again every few seconds.
window.ProgressConnection = (() => {
  const POLL_TIMEOUT_S = 25;
  // A poll still unanswered this long after its timeout hangs on a dead connection.
  const POLL_SLACK_MS = 15000;
  const PROBE_FIRST_MS = 250;
  const PROBE_MAX_MS = 1500;
  const PROBE_TIMEOUT_MS = 3000;
  const GONE_RETRY_MS = 2000;

  /** `query()` gives the poll's query string, `apply(body)` applies an answer (a promise),
   * `onState(state, retryAt)` shows 'live', 'lost' or 'gone'. */
  function create(query, apply, onState) {
    const connection = {
      query, apply, onState, state: 'live', retryAt: 0, wake: null, quick: false,
    };
    window.addEventListener('online', () => retryNow(connection));
    return connection;
  }

  async function follow(connection) {
    let failures = 0;
    for (;;) {
      let outcome;
      try {
        outcome = await pollOnce(connection);
      } catch (error) {
        reportError(error);  // a bug in applying a body: say it, then resynchronise
        outcome = 'error';
      }
      if (outcome === 'ok') {
        failures = 0;
        setState(connection, 'live', 0);
      } else if (outcome === 'gone') {
        failures = 0;
        setState(connection, 'gone', GONE_RETRY_MS);
        await pause(connection, GONE_RETRY_MS);
      } else {
        failures += 1;
        await waitForServer(connection, failures);
        connection.quick = true;  // the next poll answers at once: live again, and what moved
      }
    }
  }

  /** One long poll: 'ok' once applied, 'gone' for a 404, 'error' when the server can't be
   * reached or answers an error. */
  async function pollOnce(connection) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), POLL_TIMEOUT_S * 1000 + POLL_SLACK_MS);
    const timeout = connection.quick ? 0 : POLL_TIMEOUT_S;
    connection.quick = false;
    let body;
    try {
      const response = await fetch(`poll?${connection.query()}&timeout=${timeout}`, {
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
    await connection.apply(body);
    return 'ok';
  }

  /** Waits until `health` answers: the first probe soon, then at doubling intervals up to
   * PROBE_MAX_MS (jittered below it, so that many pages don't probe in step). */
  async function waitForServer(connection, failures) {
    let delay = Math.min(PROBE_MAX_MS, PROBE_FIRST_MS * 2 ** Math.min(failures - 1, 8));
    for (;;) {
      const wait = delay * (0.75 + 0.25 * Math.random());
      setState(connection, 'lost', wait);
      await pause(connection, wait);
      if (await healthy()) return;
      delay = Math.min(PROBE_MAX_MS, delay * 2);
    }
  }

  async function healthy() {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), PROBE_TIMEOUT_MS);
    try {
      const response = await fetch('health', {
        method: 'HEAD', cache: 'no-store', signal: controller.signal,
      });
      return response.ok;
    } catch (error) {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  function setState(connection, state, retryInMs) {
    const retryAt = performance.now() + retryInMs;
    const changed = state !== connection.state;
    connection.state = state;
    connection.retryAt = retryAt;
    connection.onState(state, retryAt, changed);
  }

  /** A pause that "Retry now" or a return of the network ends early. */
  function pause(connection, ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      connection.wake = () => { clearTimeout(timer); resolve(); };
    }).finally(() => { connection.wake = null; });
  }

  function retryNow(connection) {
    if (connection.wake) connection.wake();
  }

  function reportError(error) {
    setTimeout(() => { throw error; });  // to the console and error handlers, not the loop
  }

  return { create, follow, retryNow };
})();
