'use strict';
// The list of workers, windowed: however many workers the list holds, only the rows in view
// (and a screenful around them) are elements, absolutely placed in a container as tall as the
// whole list. Row elements are reused as the window moves. Heights: a row is as tall as its
// content (a long id wraps, never cut); off-screen rows count with an estimate from their
// id's width, and each row is measured once it is drawn. The page scrolls as usual.
// Keyboard: one row is a tab stop; arrows, Page Up/Down, Home and End move between rows.
window.ProgressWindow = (() => {
  const Rows = window.ProgressRows;
  // Rows drawn beyond the viewport on each side, in CSS pixels.
  const OVERSCAN_PX = 500;
  const SAMPLE = { current: 1, total: 1, desc: 'x', rate: 1, eta_s: 60, updated: 0 };

  function create(rowsEl, onOpen) {
    const win = {
      rowsEl, onOpen, view: [], viewGen: 0, offsets: new Float64Array(1), offsetsDirty: true,
      pool: new Map(), free: [], probe: null, layout: null, layoutGen: 0, active: null,
      tabRow: null, now: 0,
    };
    win.probe = makeProbe(win);
    rowsEl.addEventListener('click', (event) => clicked(win, event));
    rowsEl.addEventListener('keydown', (event) => keyed(win, event));
    return win;
  }

  /** A hidden row with every part filled in: its size gives the height of a one-line row,
   * the width an id has and the width of a bar, whatever the layout and density. */
  function makeProbe(win) {
    const probe = Rows.make();
    const entry = { workid: 'W', data: SAMPLE, fraction: 1, state: 'running' };
    Rows.write(probe, entry, 0, 0);
    probe.el.classList.add('probe');
    probe.el.setAttribute('aria-hidden', 'true');
    probe.el.inert = true;
    probe.el.removeAttribute('role');
    // Beside the list, as wide as it, so that it is never taken for a row.
    const box = document.createElement('div');
    box.className = 'rows probe-box';
    box.append(probe.el);
    win.rowsEl.before(box);
    return probe;
  }

  /** Reads the layout from the probe (after a resize, a change of density or of font);
   * true when row heights must be estimated again. */
  function readLayout(win) {
    const probe = win.probe;
    const fontChanged = Rows.init(probe);
    const idStyle = getComputedStyle(probe.idText);
    const layout = {
      base: probe.el.offsetHeight,
      idBox: probe.idText.clientWidth,
      line: parseFloat(idStyle.lineHeight) || 20,
      bar: probe.bar.clientWidth,
    };
    const old = win.layout;
    win.layout = layout;
    if (!old || fontChanged || old.base !== layout.base || old.idBox !== layout.idBox
        || old.line !== layout.line) {
      win.layoutGen += 1;  // every height is estimated again, then measured when drawn
      win.offsetsDirty = true;
      return true;
    }
    return old.bar !== layout.bar;
  }

  /** The height a row will have, in whole pixels (as offsetHeight measures it), measured if
   * it was drawn in this layout, else estimated from how many lines its id takes. */
  function heightOf(win, entry) {
    const layout = win.layout;
    if (entry.heightGen !== win.layoutGen) {
      entry.heightGen = win.layoutGen;
      const lines = Rows.idLines(entry, layout.idBox);
      entry.height = Math.round(layout.base + (lines - 1) * layout.line);  // whole pixels
    }
    return entry.height;
  }

  /** The entries to list, in order; drawn at the next render. */
  function setView(win, view) {
    win.view = view;
    win.viewGen += 1;
    for (let i = 0; i < view.length; i += 1) {
      view[i].viewGen = win.viewGen;
      view[i].viewIndex = i;
    }
    win.offsetsDirty = true;
  }

  function indexOf(win, entry) {
    return entry && entry.viewGen === win.viewGen ? entry.viewIndex : -1;
  }

  function computeOffsets(win) {
    const view = win.view;
    if (win.offsets.length < view.length + 1) {
      win.offsets = new Float64Array(Math.max(view.length + 1, win.offsets.length * 2));
    }
    const offsets = win.offsets;
    offsets[0] = 0;
    for (let i = 0; i < view.length; i += 1) offsets[i + 1] = offsets[i] + heightOf(win, view[i]);
    win.offsetsDirty = false;
    win.rowsEl.style.height = `${offsets[view.length]}px`;
  }

  /** The first row whose bottom is below `y` (pixels from the list's top). */
  function rowAt(win, y) {
    const offsets = win.offsets;
    let low = 0;
    let high = win.view.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (offsets[middle + 1] <= y) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Draws the rows in view: releases those that left, fills the new ones, rewrites those
   * whose worker changed, then measures what it drew. */
  function render(win, now) {
    win.now = now;
    if (!win.layout) readLayout(win);
    if (win.offsetsDirty) computeOffsets(win);
    const top = win.rowsEl.getBoundingClientRect().top;
    const start = rowAt(win, -top - OVERSCAN_PX);
    const end = Math.min(win.view.length, rowAt(win, -top + innerHeight + OVERSCAN_PX) + 1);
    const focused = focusedEntry(win);
    release(win, start, end);
    const written = fill(win, start, end, now);
    order(win, start, end);
    if (measure(win, written, -top)) placeAll(win, start, end);
    chooseTabStop(win, -top);
    if (focused && win.pool.has(focused) && !win.pool.get(focused).el.contains(
      document.activeElement)) {
      win.pool.get(focused).button.focus({ preventScroll: true });
    }
  }

  function release(win, start, end) {
    for (const [entry, row] of win.pool) {
      const index = indexOf(win, entry);
      if (index < start || index >= end) {
        row.el.remove();
        win.pool.delete(entry);
        win.free.push(row);
      }
    }
  }

  function fill(win, start, end, now) {
    const written = [];
    const barWidth = win.layout.bar;
    for (let i = start; i < end; i += 1) {
      const entry = win.view[i];
      let row = win.pool.get(entry);
      if (row === undefined) {
        row = win.free.pop() || Rows.make();
        win.pool.set(entry, row);
        entry.dirty = true;
      }
      if (entry.dirty || row.entry !== entry) {
        Rows.write(row, entry, now, barWidth);
        entry.dirty = false;
        written.push(row);
      }
      place(row, i, win.offsets[i]);
    }
    return written;
  }

  function place(row, index, offset) {
    if (row.top !== offset) {
      row.top = offset;
      row.el.style.transform = `translateY(${offset}px)`;
    }
    const rowIndex = String(index + 2);  // the column headers are row 1
    if (row.rowIndex !== rowIndex) {
      row.rowIndex = rowIndex;
      row.el.setAttribute('aria-rowindex', rowIndex);
    }
  }

  function placeAll(win, start, end) {
    for (let i = start; i < end; i += 1) place(win.pool.get(win.view[i]), i, win.offsets[i]);
  }

  /** Keeps the rows' document order the visual one (screen readers and Tab follow it),
   * moving only rows out of place. */
  function order(win, start, end) {
    let cursor = win.rowsEl.firstElementChild;
    for (let i = start; i < end; i += 1) {
      const el = win.pool.get(win.view[i]).el;
      if (el === cursor) cursor = cursor.nextElementSibling;
      else win.rowsEl.insertBefore(el, cursor);
    }
  }

  /** Measures the rows just drawn; true when a height differed from its estimate (the
   * offsets are then computed again, and the page scrolled so what was in view stays). */
  function measure(win, written, viewTop) {
    let changed = false;
    const anchor = rowAt(win, Math.max(0, viewTop));
    const anchorOffset = win.offsets[anchor];
    for (const row of written) {
      const height = row.el.offsetHeight;
      const entry = row.entry;
      if (height > 0 && height !== entry.height) {
        entry.height = height;
        changed = true;
      }
    }
    if (!changed) return false;
    computeOffsets(win);
    const shift = win.offsets[anchor] - anchorOffset;
    if (shift && viewTop > 0) window.scrollBy(0, shift);
    return true;
  }

  /** The one row that Tab reaches: the active one if drawn, else the first in view. */
  function chooseTabStop(win, viewTop) {
    let row = win.active ? win.pool.get(win.active) : undefined;
    if (row === undefined && win.view.length) {
      const first = win.view[Math.min(win.view.length - 1, rowAt(win, Math.max(0, viewTop)))];
      row = win.pool.get(first);
    }
    if (row === win.tabRow) return;
    if (win.tabRow) win.tabRow.button.tabIndex = -1;
    win.tabRow = row || null;
    if (row) row.button.tabIndex = 0;
  }

  function focusedEntry(win) {
    const element = document.activeElement;
    if (!element || !win.rowsEl.contains(element)) return null;
    const rowEl = element.closest('.worker');
    return rowEl && rowEl.row ? rowEl.row.entry : null;
  }

  /** Every second: the ages and ETAs of the rows in view, and nothing else. */
  function refreshClock(win, now) {
    win.now = now;
    for (const [entry, row] of win.pool) Rows.writeClock(row, entry, now);
  }

  /** The drawn row of an entry, if any. */
  function rowOf(win, entry) {
    return win.pool.get(entry) || null;
  }

  function clicked(win, event) {
    const rowEl = event.target.closest('.worker');
    if (!rowEl || !rowEl.row || !rowEl.row.entry) return;
    if (String(window.getSelection()) !== '') return;  // selecting text, not opening
    win.active = rowEl.row.entry;
    chooseTabStop(win, 0);
    win.onOpen(rowEl.row.entry);
  }

  const KEY_STEPS = { ArrowDown: 1, ArrowUp: -1, PageDown: 'page', PageUp: '-page',
                      Home: 'first', End: 'last' };

  function keyed(win, event) {
    const step = KEY_STEPS[event.key];
    const rowEl = event.target.closest('.worker');
    if (step === undefined || !rowEl || !rowEl.row || event.altKey || event.ctrlKey) return;
    event.preventDefault();
    const from = indexOf(win, rowEl.row.entry);
    const page = Math.max(1, Math.floor(innerHeight / (win.layout.base || 40)) - 1);
    let to = from + (typeof step === 'number' ? step : 0);
    if (step === 'page') to = from + page;
    if (step === '-page') to = from - page;
    if (step === 'first') to = 0;
    if (step === 'last') to = win.view.length - 1;
    focusIndex(win, Math.max(0, Math.min(win.view.length - 1, to)));
  }

  /** Scrolls row `index` into view, draws it and puts the focus on it. */
  function focusIndex(win, index) {
    const entry = win.view[index];
    if (!entry) return;
    win.active = entry;
    if (win.offsetsDirty) computeOffsets(win);
    const listTop = win.rowsEl.getBoundingClientRect().top + scrollY;
    const rowTop = listTop + win.offsets[index];
    const rowBottom = listTop + win.offsets[index + 1];
    const header = stickyHeight(win);
    if (rowTop < scrollY + header) window.scrollTo(0, rowTop - header);
    else if (rowBottom > scrollY + innerHeight) window.scrollTo(0, rowBottom - innerHeight);
    render(win, win.now);
    const row = win.pool.get(entry);
    if (row) row.button.focus({ preventScroll: true });
  }

  function stickyHeight(win) {
    const header = win.rowsEl.parentElement.querySelector('.columns');
    return header ? header.getBoundingClientRect().height : 0;
  }

  function rendered(win) {
    return win.pool.size;
  }

  return {
    create, readLayout, setView, render, refreshClock, rowOf, focusIndex, indexOf, rendered,
  };
})();
