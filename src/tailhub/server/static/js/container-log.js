/**
 * The log of one container as this page knows it, and where to resume it from.
 *
 * Guarantees: entries are kept in `seq` order with no duplicate, whatever order and however
 * often the hub delivers a message (the live `*` subscription and the container's own one can
 * both deliver it, and a resumed subscription may repeat what was already here).
 * `resumeFrom` is the highest `seq` up to which nothing is missing, so subscribing with
 * `since: resumeFrom` after a reconnect leaves no gap and, with the dedupe, no duplicate.
 * Each entry knows whether it begins a new run of the container (`runStart`, see
 * `startsRun`), judged against the entry before it here.
 * @module container-log
 */

import { startsRun, toEntry } from "./entry.js";

/** @typedef {import("./entry.js").Entry} Entry */

/**
 * @typedef {object} LogListener
 * @property {(log: ContainerLog, entry: Entry) => void} added an entry was inserted
 * @property {(log: ContainerLog) => void} trimmed the oldest entries were dropped, or an
 *   entry's height changed: lay everything out again
 */

export class ContainerLog {
  /**
   * @param {string} id the containerID
   * @param {{cap?: number}} [options] `cap`: most entries kept; the oldest go first
   */
  constructor(id, { cap = 250_000 } = {}) {
    this.id = id;
    this.cap = cap;
    /** @type {Entry[]} in `seq` order */
    this.entries = [];
    /** Every seq up to this one that the hub still keeps is in `entries` (once based). */
    this.contiguous = 0;
    /** Index in `entries` of the entry with seq `contiguous`, or -1. */
    this.contiguousIndex = -1;
    /** Whether a `subscribed` reply has fixed where this log starts. */
    this.based = false;
    /** Messages the hub no longer kept when this page resumed (retention). */
    this.lost = 0;
    /** The oldest seq the hub still keeps, as of the last `subscribed` reply (0: none). */
    this.hubFirst = 0;
    /** @type {Set<LogListener>} */
    this.listeners = new Set();
  }

  /** The `since` to subscribe with, or null when the log has never been subscribed. */
  get resumeFrom() {
    return this.based ? this.contiguous : null;
  }

  /** The highest seq held, or 0. */
  get lastSeq() {
    return this.entries.length ? this.entries[this.entries.length - 1].seq : 0;
  }

  /**
   * The subscribe message that continues this log: `since` once based, else `tail`.
   * @param {number} tail how many recent messages to ask for the first time
   */
  subscribeMessage(tail) {
    const resume = this.resumeFrom;
    return resume === null
      ? { type: "subscribe", containerID: this.id, tail }
      : { type: "subscribe", containerID: this.id, since: resume };
  }

  /** How many older messages the hub keeps that this log does not hold. */
  get earlierAvailable() {
    if (!this.based || !this.hubFirst || !this.entries.length) return 0;
    return Math.max(0, this.entries[0].seq - this.hubFirst);
  }

  /**
   * The subscribe message that also fetches up to `count` messages older than the oldest
   * held. The hub sends everything after `since` again; what is already here is dropped.
   * @param {number} count
   */
  earlierMessage(count) {
    const first = this.entries.length ? this.entries[0].seq : this.contiguous + 1;
    const since = Math.max(this.hubFirst - 1, first - 1 - count, 0);
    return { type: "subscribe", containerID: this.id, since };
  }

  /**
   * Takes the hub's `subscribed` reply to a subscription made with `subscribeMessage`.
   *
   * @param {{seq?: number, firstSeq?: number, truncated?: boolean}} reply
   * @param {number} tail the `tail` that was asked for when the log was not yet based
   * @returns {boolean} true when the hub's history no longer matches this log (its seq went
   *   back: a hub started afresh); the log is then emptied and must be subscribed again
   */
  subscribed(reply, tail) {
    const last = Number(reply.seq) || 0;
    const first = Number(reply.firstSeq) || 0;
    this.hubFirst = first;
    if (this.based && last < this.contiguous) {
      this.clear();
      return true;
    }
    let floor;
    if (!this.based) {
      // With `tail`, the backlog is the last `tail` kept messages, ending at `last`.
      floor = Math.max(first, last - tail + 1, 1) - 1;
      this.based = true;
    } else {
      floor = first > this.contiguous + 1 ? first - 1 : this.contiguous;
      if (reply.truncated && first > this.contiguous + 1) this.lost += first - 1 - this.contiguous;
    }
    if (floor > this.contiguous) {
      this.contiguous = floor;
      this.contiguousIndex = this.indexAtOrBelow(floor);
    }
    this.advance();
    return false;
  }

  /** Forgets every entry and where the log starts. */
  clear() {
    for (const entry of this.entries) entry.dropped = true;
    this.entries = [];
    this.contiguous = 0;
    this.contiguousIndex = -1;
    this.based = false;
    for (const listener of this.listeners) listener.trimmed(this);
  }

  /**
   * Adds a routed message; returns its entry, or null when it was already here.
   * @param {Record<string, any>} msg
   */
  add(msg) {
    const seq = msg.seq;
    const entries = this.entries;
    let index = entries.length;
    if (index && entries[index - 1].seq >= seq) {
      index = this.insertionPoint(seq);
      if (index < entries.length && entries[index].seq === seq) return null;
    }
    const entry = toEntry(msg);
    if (index === entries.length) entries.push(entry);
    else entries.splice(index, 0, entry);
    if (index <= this.contiguousIndex) this.contiguousIndex++;
    this.advance();
    entry.runStart = startsRun(entries[index - 1], entry);
    const next = entries[index + 1];
    const nextChanged = next !== undefined && next.runStart !== startsRun(entry, next);
    if (nextChanged) next.runStart = !next.runStart;
    for (const listener of this.listeners) listener.added(this, entry);
    // The next entry's height changed: the views lay everything out again.
    if (nextChanged) for (const listener of this.listeners) listener.trimmed(this);
    if (entries.length > this.cap * 1.1) this.trim();
    return entry;
  }

  /** Moves `contiguous` over every entry that directly follows it. */
  advance() {
    if (!this.based) return;
    const entries = this.entries;
    let i = this.contiguousIndex + 1;
    while (i < entries.length && entries[i].seq <= this.contiguous + 1) {
      this.contiguous = Math.max(this.contiguous, entries[i].seq);
      i++;
    }
    this.contiguousIndex = i - 1;
  }

  /** Drops the oldest entries down to `cap`. */
  trim() {
    const drop = this.entries.length - this.cap;
    for (let i = 0; i < drop; i++) this.entries[i].dropped = true;
    this.entries.splice(0, drop);
    this.contiguousIndex = Math.max(-1, this.contiguousIndex - drop);
    for (const listener of this.listeners) listener.trimmed(this);
  }

  /** The first index whose seq is >= `seq`. @param {number} seq */
  insertionPoint(seq) {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid].seq < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The index of the last entry with seq <= `seq`, or -1. @param {number} seq */
  indexAtOrBelow(seq) {
    return this.insertionPoint(seq + 1) - 1;
  }
}

/** Every container's log this page has opened, by containerID. */
export class LogStore {
  /** @param {{cap?: number}} [options] */
  constructor(options = {}) {
    this.options = options;
    /** @type {Map<string, ContainerLog>} */
    this.logs = new Map();
  }

  /** @param {string} id */
  get(id) {
    return this.logs.get(id);
  }

  /** The log of `id`, made when first asked for. @param {string} id */
  open(id) {
    let log = this.logs.get(id);
    if (!log) {
      log = new ContainerLog(id, this.options);
      this.logs.set(id, log);
    }
    return log;
  }
}
