'use strict';
// Loaded on every page before it paints (not deferred): applies the theme the user chose with
// the show page's toggle (none chosen: the system's prefers-color-scheme decides, see
// templates/base.html), and keeps the few choices the show page remembers in localStorage.
window.ProgressPrefs = (() => {
  const PREFIX = 'tornado-progress-';

  function get(name) {
    try {
      return localStorage.getItem(PREFIX + name);
    } catch (error) {
      return null;  // storage refused (private mode, a sandbox): nothing is remembered
    }
  }

  /** Remembers a choice; null forgets it. */
  function set(name, value) {
    try {
      if (value === null) localStorage.removeItem(PREFIX + name);
      else localStorage.setItem(PREFIX + name, value);
    } catch (error) {
      // The choice lasts as long as the page.
    }
  }

  return { get, set };
})();

window.ProgressTheme = (() => {
  const systemDark = window.matchMedia('(prefers-color-scheme: dark)');

  function chosen() {
    const theme = window.ProgressPrefs.get('theme');
    return theme === 'light' || theme === 'dark' ? theme : null;
  }

  function apply() {
    const theme = chosen();
    if (theme) document.documentElement.dataset.theme = theme;
    else delete document.documentElement.dataset.theme;
  }

  function system() {
    return systemDark.matches ? 'dark' : 'light';
  }

  function effective() {
    return chosen() || system();
  }

  /** Switches to the other theme; choosing the system's own forgets the choice, so that the
   * page follows the system again. */
  function toggle() {
    const next = effective() === 'dark' ? 'light' : 'dark';
    window.ProgressPrefs.set('theme', next === system() ? null : next);
    apply();
    return next;
  }

  function onSystemChange(listener) {
    systemDark.addEventListener('change', listener);
  }

  apply();
  return { effective, toggle, onSystemChange };
})();
