'use strict';
// A worker's details, in a modal <dialog> opened by tapping or clicking its row (or Enter on
// its id): every field of its last report, its whole desc and id, kept live while open.
// Escape or the close button closes it and the focus goes back to the worker's row.
window.ProgressDetails = (() => {
  const F = window.ProgressFormat;
  const S = window.ProgressState;
  const Rows = window.ProgressRows;

  function create(dialog, onClose) {
    const field = (name) => dialog.querySelector(`[data-field="${name}"]`);
    const details = {
      dialog, entry: null, onClose,
      fields: Object.fromEntries(['workid', 'glyph', 'state', 'percent', 'counts', 'desc',
                                  'rate', 'eta', 'updated'].map((name) => [name, field(name)])),
    };
    dialog.querySelector('.details-close').addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      const entry = details.entry;
      details.entry = null;
      if (entry) onClose(entry);
    });
    // A click on the backdrop (outside the box) closes it too, as on a phone's sheet.
    dialog.addEventListener('click', (event) => {
      const box = dialog.getBoundingClientRect();
      const outside = event.clientX < box.left || event.clientX > box.right
        || event.clientY < box.top || event.clientY > box.bottom;
      if (event.target === dialog && outside) dialog.close();
    });
    return details;
  }

  function open(details, entry, now) {
    details.entry = entry;
    write(details, now);
    if (!details.dialog.open) details.dialog.showModal();
  }

  /** Writes the entry's fields; called at open, on each of its reports and every second. */
  function write(details, now) {
    const entry = details.entry;
    if (!entry || !entry.data) return;
    const data = entry.data;
    const fields = details.fields;
    details.dialog.className = `details is-${entry.state}`;
    Rows.setText(fields.workid, entry.workid);
    Rows.setText(fields.glyph, S.GLYPHS[entry.state]);
    Rows.setText(fields.state, S.WORDS[entry.state]);
    Rows.setText(fields.percent, `${F.percent(entry.fraction)}%`);
    Rows.setText(fields.counts, `${F.count(data.current)} of ${F.count(data.total)}`);
    Rows.setText(fields.desc, data.desc || '(none)');
    Rows.setText(fields.rate, rateText(data.rate));
    Rows.setText(fields.eta, etaText(entry, now));
    Rows.setText(fields.updated,
                 `${F.age(now - data.updated)} (at ${F.clockTime(data.updated, true)})`);
  }

  function rateText(rate) {
    const text = F.rate(rate);
    return text === '—' ? 'not known yet' : text;
  }

  function etaText(entry, now) {
    const left = Rows.remaining(entry, now);
    if (left === null) return Rows.etaText(entry, now);
    return left < 1 ? 'due now' : `${F.duration(left)} (at ${F.clockTime(now + left)})`;
  }

  function close(details) {
    if (details.dialog.open) details.dialog.close();
  }

  return { create, open, write, close };
})();
