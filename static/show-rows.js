'use strict';
// A worker's row: built from <template id="worker-row"> and reused for whichever worker the
// window (show-window.js) shows in it; only what differs from what the row shows is written,
// so an unchanged row gets no mutation. Every string from the server goes in with textContent
// or an attribute, never as markup. Label and id widths come from a canvas, not from layout.
window.ProgressRows = (() => {
  const F = window.ProgressFormat;
  const S = window.ProgressState;
  // Horizontal padding of a bar label in CSS pixels (`.label` in progress.css).
  const LABEL_PAD_PX = 8;
  // Label widths by string: workers of one job often share their strings ("calibrating").
  const WIDTH_CACHE_MAX = 5000;
  const labelWidths = new Map();
  const charWidths = new Map();
  const labelContext = document.createElement('canvas').getContext('2d');
  const idContext = document.createElement('canvas').getContext('2d');
  const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
  let widestAscii = 0;
  let fontGeneration = 0;
  let template = null;

  /** Reads, once per layout, the fonts that labels and ids are drawn with (from the probe
   * row, which has every part a row has). */
  function init(probe) {
    const labelFont = getComputedStyle(probe.label).font;
    const idFont = getComputedStyle(probe.idText).font;
    if (labelContext.font !== labelFont) {
      labelContext.font = labelFont;
      labelWidths.clear();
    }
    if (idContext.font !== idFont) {
      idContext.font = idFont;
      charWidths.clear();
      widestAscii = 0;
      for (let code = 0x20; code < 0x7f; code += 1) {
        widestAscii = Math.max(widestAscii, charWidth(String.fromCharCode(code)));
      }
      fontGeneration += 1;
      return true;
    }
    return false;
  }

  /** A new row, not yet in the page. */
  function make() {
    template = template || document.getElementById('worker-row').content.firstElementChild;
    const el = template.cloneNode(true);
    const [idCell, barCell, figures, stateCell, age, rate, eta] = el.children;
    const bar = barCell.firstElementChild;
    const row = {
      el, button: idCell.firstElementChild, idText: idCell.firstElementChild.firstElementChild,
      bar, fill: bar.firstElementChild, label: bar.lastElementChild,
      pct: figures.firstElementChild, count: figures.lastElementChild,
      glyph: stateCell.firstElementChild, word: stateCell.lastElementChild, age, rate, eta,
      entry: null, shown: {},
    };
    el.row = row;
    return row;
  }

  /** Shows `entry` in `row`: everything when the row showed another worker, else only what
   * changed. `barWidth` places the label inside or beside the fill. */
  function write(row, entry, now, barWidth) {
    const data = entry.data;
    if (row.entry !== entry) {
      row.entry = entry;
      setText(row.idText, entry.workid);
      row.shown = {};
    }
    const shown = row.shown;
    if (shown.data !== data) {
      shown.data = data;
      writeFigures(row, entry);
    }
    if (shown.state !== entry.state) {
      shown.state = entry.state;
      row.el.className = `worker is-${entry.state}`;
      setText(row.glyph, S.GLYPHS[entry.state]);
      setText(row.word, S.WORDS[entry.state]);
    }
    setAttr(row.bar, 'aria-valuetext', valueText(entry));
    placeLabel(row, entry, barWidth);
    writeClock(row, entry, now);
  }

  function writeFigures(row, entry) {
    const data = entry.data;
    const pct = F.percent(entry.fraction);
    if (row.shown.fraction !== entry.fraction) {
      row.shown.fraction = entry.fraction;
      row.bar.style.setProperty('--f', String(entry.fraction));
    }
    setAttr(row.bar, 'aria-valuenow', String(pct));
    setAttr(row.bar, 'aria-label', data.desc || `Progress of ${entry.workid}`);
    setText(row.pct, `${pct}%`);
    setText(row.count, `${F.count(data.current)}/${F.count(data.total)}`);
    setText(row.rate, F.rate(data.rate));
    setText(row.label, data.desc);
  }

  function valueText(entry) {
    const data = entry.data;
    return `${F.percent(entry.fraction)}%, ${F.count(data.current)} of ${F.count(data.total)}, `
      + S.WORDS[entry.state];
  }

  /** The parts that move with the clock alone: the age and the ETA. */
  function writeClock(row, entry, now) {
    setText(row.age, F.age(now - entry.data.updated));
    setText(row.eta, etaText(entry, now));
  }

  /** Seconds left for a running worker: the server's ETA counted down since its report. */
  function remaining(entry, now) {
    if (entry.state !== 'running' || !Number.isFinite(entry.data.eta_s)) return null;
    return Math.max(0, entry.data.eta_s - (now - entry.data.updated));
  }

  function etaText(entry, now) {
    if (entry.state === 'done') return 'done';
    if (entry.state === 'failed') return '—';
    if (entry.state === 'stale') return 'no news';
    const left = remaining(entry, now);
    if (left === null) return '—';
    return left < 1 ? 'due' : F.duration(left);
  }

  /**
   * Puts the worker's string inside the filled part when it fits there, else beside it on
   * the track; when it fits neither, on the larger side, cut with an ellipsis (the details
   * show it whole).
   */
  function placeLabel(row, entry, barWidth) {
    if (!(barWidth > 0)) return;
    const filled = entry.fraction * barWidth;
    const needed = labelWidth(entry.data.desc) + 2 * LABEL_PAD_PX;
    let side;
    if (needed <= filled) side = 'inside';
    else if (needed <= barWidth - filled) side = 'beside';
    else side = filled > barWidth - filled ? 'inside' : 'beside';
    if (row.shown.side !== side) {
      row.shown.side = side;
      row.bar.className = `bar label-${side}`;
    }
  }

  function labelWidth(text) {
    if (!text) return 0;
    let width = labelWidths.get(text);
    if (width === undefined) {
      if (labelWidths.size >= WIDTH_CACHE_MAX) labelWidths.clear();
      width = labelContext.measureText(text).width;
      labelWidths.set(text, width);
    }
    return width;
  }

  /** How many lines a worker's id takes in a box `box` pixels wide: one when even its widest
   * characters would fit, else its width summed from its characters' (so that 100,000 ids
   * cost map look-ups, not text layout) over the box. An estimate: rows are measured once
   * drawn. */
  function idLines(entry, box) {
    const id = entry.workid;
    if (entry.ascii === undefined) entry.ascii = PRINTABLE_ASCII.test(id);
    if (!(box > 0) || (entry.ascii && id.length * widestAscii <= box)) return 1;
    if (entry.idWidthFont !== fontGeneration) {
      let width = 0;
      for (const char of id) width += charWidth(char);
      entry.idWidth = width;
      entry.idWidthFont = fontGeneration;
    }
    return Math.max(1, Math.ceil((entry.idWidth - 0.5) / box));
  }

  function charWidth(char) {
    let advance = charWidths.get(char);
    if (advance === undefined) {
      advance = idContext.measureText(char).width;
      charWidths.set(char, advance);
    }
    return advance;
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  function setAttr(element, name, value) {
    if (element.getAttribute(name) !== value) element.setAttribute(name, value);
  }

  return { init, make, write, writeClock, remaining, etaText, idLines, setText, setAttr };
})();
