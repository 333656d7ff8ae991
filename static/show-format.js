'use strict';
// How numbers, times and names read on the show page. Pure functions, no DOM, so that the rows
// and the header say the same thing the same way.
window.ProgressFormat = (() => {
  const counts = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });
  const speeds = new Intl.NumberFormat('en', { maximumSignificantDigits: 3 });
  // Numeric collation is the natural order: w2 before w10, as the server and the PNG sort.
  const names = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

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
  function clockTime(epochSeconds) {
    return new Date(epochSeconds * 1000).toLocaleTimeString([], {
      hour: '2-digit', minute: '2-digit',
    });
  }

  /** Natural order of ids, with the exact spelling as a tie-break so that it is total. */
  function compareNames(a, b) {
    return names.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
  }

  return { percent, count, duration, age, rate, clockTime, compareNames };
})();
