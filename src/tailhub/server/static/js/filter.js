/**
 * What the log views show and how: which levels (and standard error, a choice of its own),
 * which text to look for, and whether long lines wrap.
 * @module filter
 */

import { FILTER_LEVELS, filterLevel, haystackOf } from "./entry.js";

/** @typedef {import("./entry.js").Entry} Entry */

export class Filter {
  constructor() {
    /** @type {Set<string>} */
    this.levels = new Set(FILTER_LEVELS);
    /** The search text as typed. */
    this.query = "";
    /** Show only lines that contain the search text (else: show all, highlight matches). */
    this.only = true;
    /** Wrap long lines (else: one text line per line, scrolled sideways). */
    this.wrap = false;
    /** @type {Set<(what: "rows" | "marks") => void>} */
    this.listeners = new Set();
  }

  /** The search text, lower case and trimmed; "" when there is none. */
  get needle() {
    return this.query.trim().toLowerCase();
  }

  /**
   * Whether the views show `entry`.
   * @param {Entry} entry
   */
  matches(entry) {
    if (!this.levels.has(filterLevel(entry))) return false;
    const needle = this.needle;
    return !needle || !this.only || haystackOf(entry).includes(needle);
  }

  /**
   * The ranges of `text` to highlight: every case-insensitive occurrence of the search text.
   * @param {string} text visible text
   * @returns {Array<[number, number]>}
   */
  marks(text) {
    const needle = this.needle;
    if (!needle) return [];
    /** @type {Array<[number, number]>} */
    const ranges = [];
    const haystack = text.toLowerCase();
    for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) {
      const last = ranges[ranges.length - 1];
      if (last && at <= last[1]) last[1] = at + needle.length;
      else ranges.push([at, at + needle.length]);
    }
    return ranges;
  }

  /**
   * Changes the filter and tells the views.
   * @param {{levels?: Iterable<string>, query?: string, only?: boolean, wrap?: boolean}} change
   */
  set(change) {
    if (change.wrap !== undefined && change.wrap !== this.wrap) {
      this.wrap = change.wrap;
      for (const listener of this.listeners) listener("rows");
    }
    const levels = change.levels ? new Set(change.levels) : this.levels;
    const needle = (change.query ?? this.query).trim().toLowerCase();
    const only = change.only ?? this.only;
    const levelsChanged =
      levels.size !== this.levels.size || [...levels].some((l) => !this.levels.has(l));
    const needleChanged = needle !== this.needle;
    const onlyChanged = only !== this.only;
    this.levels = levels;
    this.query = change.query ?? this.query;
    this.only = only;
    if (!levelsChanged && !needleChanged && !onlyChanged) return;
    // Highlighting follows the search text; the rows change only when they are filtered by it.
    const what = levelsChanged || onlyChanged || (needleChanged && only) ? "rows" : "marks";
    for (const listener of this.listeners) listener(what);
  }
}
