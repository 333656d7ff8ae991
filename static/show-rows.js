'use strict';
// One row per worker: built once from <template id="worker-row">, then only the cells whose
// text changed are written. Every string from the server goes in with textContent or an
// attribute, never as markup. Nothing here reads layout, so applying a thousand rows costs no
// forced reflow: label widths come from a canvas, the bar width from a ResizeObserver.
window.ProgressRows = (() => {
  const F = window.ProgressFormat;
  // Horizontal padding of a bar label in CSS pixels (`.label` in progress.css).
  const LABEL_PAD_PX = 8;
  const STATE_WORDS = { ok: 'running', stale: 'stale', done: 'done', failed: 'failed' };
  // Label widths by string: workers of one job often share their strings ("calibrating").
  const WIDTH_CACHE_MAX = 5000;
  const widths = new Map();
  const measureContext = document.createElement('canvas').getContext('2d');
  let template = null;

  /** Reads, once, what rows are made of and the font their labels are drawn with. */
  function init(list) {
    template = document.getElementById('worker-row').content.firstElementChild;
    const probe = template.cloneNode(true);
    probe.hidden = true;
    list.append(probe);
    measureContext.font = getComputedStyle(probe.querySelector('.label')).font;
    probe.remove();
  }

  function textWidth(text) {
    if (!text) return 0;
    let width = widths.get(text);
    if (width === undefined) {
      if (widths.size >= WIDTH_CACHE_MAX) widths.clear();
      width = measureContext.measureText(text).width;
      widths.set(text, width);
    }
    return width;
  }

  function fractionOf(worker) {
    if (Number.isFinite(worker.fraction)) return Math.min(Math.max(worker.fraction, 0), 1);
    if (worker.current >= worker.total) return worker.current > 0 || worker.total > 0 ? 1 : 0;
    return worker.current / worker.total;
  }

  /** A new entry for `worker`; its row is not in the page until the caller puts it there. */
  function create(worker) {
    const row = template.cloneNode(true);
    const [id, bar, figures, age, rate, eta] = row.children;
    const entry = {
      workid: worker.workid, data: null, state: '', fraction: 0, labelWidth: 0, labelSide: '',
      row, bar, fill: bar.firstElementChild, label: bar.lastElementChild,
      pct: figures.firstElementChild, count: figures.lastElementChild, age, rate, eta,
    };
    const idText = id.lastElementChild;
    idText.textContent = worker.workid;
    idText.title = worker.workid;
    bar.setAttribute('aria-label', `Worker ${worker.workid}`);
    return entry;
  }

  /** Whether `worker` differs from what the row shows. */
  function changed(entry, worker) {
    const old = entry.data;
    return old === null || old.current !== worker.current || old.total !== worker.total
      || old.desc !== worker.desc || old.ok !== worker.ok || old.updated !== worker.updated
      || old.rate !== worker.rate || old.eta_s !== worker.eta_s;
  }

  /** Writes a worker's new report into its row; true if its state or fraction changed. */
  function write(entry, worker, now, staleAfter, barWidth) {
    const fraction = fractionOf(worker);
    const moved = fraction !== entry.fraction;
    const descChanged = entry.data === null || entry.data.desc !== worker.desc;
    entry.data = worker;
    entry.fraction = fraction;
    const pct = F.percent(fraction);
    entry.bar.style.setProperty('--f', String(fraction));
    entry.bar.setAttribute('aria-valuenow', String(pct));
    setText(entry.pct, `${pct}%`);
    setText(entry.count, `${F.count(worker.current)}/${F.count(worker.total)}`);
    setText(entry.rate, F.rate(worker.rate));
    if (descChanged) {
      entry.label.textContent = worker.desc;
      entry.label.title = worker.desc;
      entry.labelWidth = textWidth(worker.desc);
    }
    const stateChanged = refresh(entry, now, staleAfter, true);
    placeLabel(entry, barWidth);
    return moved || stateChanged;
  }

  /** The parts that move with the clock alone: state (stale), age and ETA. True if the
   * state changed. */
  function refresh(entry, now, staleAfter, force = false) {
    const data = entry.data;
    const state = stateOf(data, entry.fraction, now, staleAfter);
    const stateChanged = state !== entry.state;
    if (stateChanged) {
      entry.state = state;
      entry.row.className = `worker is-${state}`;
    }
    if (stateChanged || force) {
      const pct = F.percent(entry.fraction);
      entry.bar.setAttribute('aria-valuetext',
        `${pct}%, ${F.count(data.current)} of ${F.count(data.total)}, ${STATE_WORDS[state]}`);
    }
    setText(entry.age, F.age(now - data.updated));
    setText(entry.eta, etaText(entry, now));
    return stateChanged;
  }

  function stateOf(data, fraction, now, staleAfter) {
    if (!data.ok) return 'failed';
    if (fraction >= 1) return 'done';
    // Judged here with the server's rule and clock offset, so a row goes stale on time even
    // while nothing arrives; the server's own flag serves when the threshold is unknown.
    const stale = Number.isFinite(staleAfter) ? now - data.updated > staleAfter : data.stale;
    return stale ? 'stale' : 'ok';
  }

  /** Seconds left for a running worker: the server's ETA counted down since its report. */
  function remaining(entry, now) {
    if (entry.state !== 'ok' || !Number.isFinite(entry.data.eta_s)) return null;
    return Math.max(0, entry.data.eta_s - (now - entry.data.updated));
  }

  function etaText(entry, now) {
    if (entry.state === 'done') return 'done';
    if (entry.state === 'failed') return 'failed';
    if (entry.state === 'stale') return 'no news';
    const left = remaining(entry, now);
    if (left === null) return '—';
    return left < 1 ? 'due' : F.duration(left);
  }

  /**
   * Puts the worker's string inside the filled part when it fits there, else beside it on
   * the track; when it fits neither, on the larger side, cut with an ellipsis.
   */
  function placeLabel(entry, barWidth) {
    if (!(barWidth > 0)) return;
    const filled = entry.fraction * barWidth;
    const needed = entry.labelWidth + 2 * LABEL_PAD_PX;
    let side;
    if (needed <= filled) side = 'inside';
    else if (needed <= barWidth - filled) side = 'beside';
    else side = filled > barWidth - filled ? 'inside' : 'beside';
    if (side !== entry.labelSide) {
      entry.labelSide = side;
      entry.bar.className = `bar label-${side}`;
    }
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  return { init, create, changed, write, refresh, remaining, placeLabel };
})();
