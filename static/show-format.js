'use strict';
// How numbers, times and names read on the show page, and the one order of worker ids. Pure
// functions, no DOM, so that the rows, the header and the details say the same thing the same
// way.
window.ProgressFormat = (() => {
  const counts = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });
  const speeds = new Intl.NumberFormat('en', { maximumSignificantDigits: 3 });
  const DIGIT_RUNS = /[0-9]+/g;
  // Run kinds in the order they sort: the end of a name (which carries the exact name) first,
  // so that a name comes before the longer names it begins, then digits, then text, as in
  // tornado_progress/views.natural_key.
  const END = -1;
  const DIGITS = 0;
  const TEXT = 1;

  /** Whole percent, rounded down so that 100 % appears only when a worker is really done. */
  function percent(fraction) {
    const clamped = Math.min(Math.max(Number(fraction) || 0, 0), 1);
    return Math.floor(clamped * 100 + 1e-9);
  }

  /** A worker's current or total: integers as they are, decimals to two places. */
  function count(value) {
    return counts.format(value);
  }

  /** A span of time, precise to the second while it is short, coarser as it grows. */
  function duration(seconds) {
    if (!Number.isFinite(seconds)) return '—';
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return pair(Math.floor(s / 60), 'min', s % 60, 's');
    if (s < 86400) return pair(Math.floor(s / 3600), 'h', Math.floor(s / 60) % 60, 'min');
    return pair(Math.floor(s / 86400), 'd', Math.floor(s / 3600) % 24, 'h');
  }

  function pair(major, majorUnit, minor, minorUnit) {
    return minor ? `${major} ${majorUnit} ${minor} ${minorUnit}` : `${major} ${majorUnit}`;
  }

  /** How long ago a worker reported, in the one unit that matters at a glance. */
  function age(seconds) {
    if (!(seconds >= 1)) return 'just now';  // also absorbs a few ms of clock jitter below 0
    if (seconds < 60) return `${Math.floor(seconds)} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return `${Math.floor(seconds / 86400)} d ago`;
  }

  /** Things per second, moved to per minute or per hour when the number would read 0.0x. */
  function rate(perSecond) {
    if (perSecond === null || perSecond === undefined || !Number.isFinite(perSecond)) return '—';
    if (perSecond <= 0) return '0/s';
    if (perSecond >= 1) return `${speeds.format(perSecond)}/s`;
    if (perSecond * 60 >= 1) return `${speeds.format(perSecond * 60)}/min`;
    return `${speeds.format(perSecond * 3600)}/h`;
  }

  /** The local wall-clock time of a server epoch instant (the offset is already applied). */
  function clockTime(epochSeconds, withSeconds = false) {
    const options = { hour: '2-digit', minute: '2-digit' };
    if (withSeconds) options.second = '2-digit';
    return new Date(epochSeconds * 1000).toLocaleTimeString([], options);
  }

  /**
   * A name's sort key, as views.natural_key builds it: its runs of ASCII digits (by value)
   * and of other characters (lower-cased, each run on its own), then the name itself.
   */
  function naturalKey(name) {
    const runs = [];
    let at = 0;
    for (const match of name.matchAll(DIGIT_RUNS)) {
      if (match.index > at) runs.push(TEXT, name.slice(at, match.index).toLowerCase());
      runs.push(DIGITS, match[0].replace(/^0+/, ''));
      at = match.index + match[0].length;
    }
    if (at < name.length) runs.push(TEXT, name.slice(at).toLowerCase());
    runs.push(END, name);
    return runs;
  }

  /** Strings by code point (not by UTF-16 unit, which puts U+1D518 before U+FB00). */
  function compareCodePoints(a, b) {
    if (a === b) return 0;
    const length = Math.min(a.length, b.length);
    for (let i = 0; i < length; i += 1) {
      if (a.charCodeAt(i) !== b.charCodeAt(i)) {
        // At the first differing unit: a whole code point where a surrogate pair starts, or
        // the two low surrogates of pairs whose high ones agree.
        return a.codePointAt(i) < b.codePointAt(i) ? -1 : 1;
      }
    }
    return a.length < b.length ? -1 : 1;
  }

  /** Digit runs without their leading zeros: by length, then digit by digit. */
  function compareDigits(a, b) {
    if (a.length !== b.length) return a.length < b.length ? -1 : 1;
    return a === b ? 0 : (a < b ? -1 : 1);
  }

  /** Two keys of naturalKey, run by run, as Python compares the tuples of natural_key. */
  function compareKeys(a, b) {
    for (let i = 0; i < a.length && i < b.length; i += 2) {
      if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
      const order = a[i] === DIGITS ? compareDigits(a[i + 1], b[i + 1])
        : compareCodePoints(a[i + 1], b[i + 1]);
      if (order) return order;
    }
    return 0;  // only the same name: both keys end with it
  }

  /** The natural order of worker ids that the server, the PNG and the page share. */
  function compareNames(a, b) {
    return a === b ? 0 : compareKeys(naturalKey(a), naturalKey(b));
  }

  return {
    percent, count, duration, age, rate, clockTime, naturalKey, compareKeys, compareNames,
    compareCodePoints,
  };
})();
