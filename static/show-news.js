'use strict';
// News for people who are not watching: the tab's title (the percent, and a mark once
// something failed or all is done), a polite live region that speaks only when it matters (a
// worker failed, the job finished, the connection was lost or came back), and, only after the
// user asks with the button, the browser's notifications for a failure and the finish.
window.ProgressNews = (() => {
  const F = window.ProgressFormat;
  const S = window.ProgressState;
  const NAMES_SAID = 3;

  function create(announcer, button) {
    const news = { announcer, button, enabled: false, finished: null, said: '' };
    const usable = 'Notification' in window && window.isSecureContext
      && Notification.permission !== 'denied';
    if (usable) {
      button.hidden = false;
      // Asked for once, on a click: after that, a later visit keeps them on, without asking.
      news.enabled = Notification.permission === 'granted'
        && window.ProgressPrefs.get('notify') === 'on';
      button.addEventListener('click', () => toggle(news));
      render(news);
    }
    return news;
  }

  /** The tab's title: "✗ 42% name" while any worker failed, "✓ 100% name" when all is done;
   * pages.py writes the same before the script runs. */
  function title(summary, name, gone) {
    const mark = summary.failed ? '✗ ' : (S.finished(summary) ? '✓ ' : '');
    const text = `${mark}${F.percent(summary.fraction)}% ${name}`;
    return gone ? `Deleted · ${text}` : text;
  }

  /** After an answer was applied: says (and notifies) new failures and a finish. The first
   * answer only sets what counts as new. */
  function update(news, report, summary, name, first) {
    const finished = S.finished(summary);
    const finishedNow = finished && news.finished === false;
    news.finished = finished;
    if (first) return;
    const messages = [];
    if (report.failed.length) messages.push(failedSentence(report.failed));
    if (finishedNow) {
      messages.push(`Job finished: ${F.count(summary.done)} done, `
                    + `${F.count(summary.failed)} failed.`);
    }
    if (!messages.length) return;
    say(news, messages.join(' '));
    notify(news, finishedNow ? `Finished: ${name}` : `Failed: ${name}`, messages.join(' '));
  }

  function failedSentence(ids) {
    if (ids.length === 1) return `Worker ${ids[0]} failed.`;
    const named = ids.slice(0, NAMES_SAID);
    const more = ids.length - named.length;
    const list = more ? `${named.join(', ')} and ${F.count(more)} more`
      : `${named.slice(0, -1).join(', ')} and ${named[named.length - 1]}`;
    return `${F.count(ids.length)} workers failed: ${list}.`;
  }

  /** Puts a sentence in the live region; the same sentence again is still spoken. */
  function say(news, sentence) {
    const text = sentence === news.said ? `${sentence}\u00a0` : sentence;
    news.said = text;
    news.announcer.textContent = text;
  }

  function notify(news, heading, body) {
    if (!news.enabled || Notification.permission !== 'granted') return;
    try {
      new Notification(heading, { body, tag: 'tornado-progress' });
    } catch (error) {
      // Some mobile browsers only notify through a service worker: the title still tells.
    }
  }

  async function toggle(news) {
    if (news.enabled) {
      news.enabled = false;
    } else {
      const permission = Notification.permission === 'granted'
        ? 'granted' : await Notification.requestPermission();
      news.enabled = permission === 'granted';
      if (permission === 'denied') news.button.hidden = true;
    }
    window.ProgressPrefs.set('notify', news.enabled ? 'on' : null);
    render(news);
  }

  function render(news) {
    news.button.setAttribute('aria-pressed', String(news.enabled));
  }

  return { create, title, update, say };
})();
