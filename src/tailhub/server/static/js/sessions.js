/**
 * The hub's sessions as this page knows them: the hub's `sessions` reply, kept current between
 * replies by the live messages of the `*` subscription.
 *
 * The hub may list one containerID twice (an ended session and a newer one); the dashboard is
 * about containers, so it keeps the active session, else the latest.
 * @module sessions
 */

import { parseTime } from "./format.js";

/**
 * @typedef {object} Session
 * @property {string} containerID
 * @property {string} status `starting`, `running`, `completed`, `error`
 * @property {boolean} active
 * @property {number} startedAt Unix ms
 * @property {number} lastActivity Unix ms
 * @property {number} endedAt Unix ms or NaN
 * @property {string | null} endReason
 * @property {number | null} exitCode
 * @property {number} lastSeq
 * @property {number} messages
 * @property {number} subscribers
 * @property {number} publishers
 */

/** @param {Record<string, any>} raw @returns {Session} */
function fromWire(raw) {
  return {
    containerID: String(raw.containerID),
    status: String(raw.status ?? "running"),
    active: Boolean(raw.active),
    startedAt: parseTime(raw.startedAt),
    lastActivity: parseTime(raw.lastActivity),
    endedAt: parseTime(raw.endedAt),
    endReason: raw.endReason ?? null,
    exitCode: typeof raw.exitCode === "number" ? raw.exitCode : null,
    lastSeq: Number(raw.lastSeq) || 0,
    messages: Number(raw.messages) || 0,
    subscribers: Number(raw.subscribers) || 0,
    publishers: Number(raw.publishers) || 0,
  };
}

/** @param {Session} a @param {Session} b whether `a` is the one to show for its container */
function preferred(a, b) {
  if (a.active !== b.active) return a.active;
  return (a.startedAt || 0) >= (b.startedAt || 0);
}

export class SessionStore {
  constructor() {
    /** @type {Map<string, Session>} */
    this.sessions = new Map();
    /** @type {Set<() => void>} */
    this.listeners = new Set();
    /** Whether a reply from the hub has been seen (the list is known, possibly empty). */
    this.loaded = false;
    /** Set when a message names a container the list does not have: worth asking again. */
    this.stale = false;
  }

  /** @param {string} id */
  get(id) {
    return this.sessions.get(id);
  }

  /** Sessions to list: active first, newest start first. */
  list() {
    return [...this.sessions.values()].sort(
      (a, b) =>
        Number(b.active) - Number(a.active) ||
        (b.startedAt || 0) - (a.startedAt || 0) ||
        a.containerID.localeCompare(b.containerID),
    );
  }

  /**
   * Replaces the list with the hub's reply, keeping what live messages taught us since the
   * request went out (a container's `lastSeq` never goes back).
   * @param {Array<Record<string, any>>} wire
   */
  replace(wire) {
    /** @type {Map<string, Session>} */
    const next = new Map();
    for (const raw of wire) {
      const session = fromWire(raw);
      const other = next.get(session.containerID);
      if (!other || preferred(session, other)) next.set(session.containerID, session);
    }
    for (const [id, session] of next) {
      const known = this.sessions.get(id);
      if (known && known.lastSeq > session.lastSeq && session.active) {
        session.messages += known.lastSeq - session.lastSeq;
        session.lastSeq = known.lastSeq;
        session.lastActivity = Math.max(session.lastActivity || 0, known.lastActivity || 0);
      }
    }
    this.sessions = next;
    this.loaded = true;
    this.stale = false;
    this.changed();
  }

  /**
   * Notes a routed message: last activity, counts, status and completion.
   * @param {Record<string, any>} msg
   */
  note(msg) {
    const id = String(msg.containerID);
    const at = parseTime(msg.timestamp);
    const when = Number.isFinite(at) ? at : Date.now();
    let session = this.sessions.get(id);
    // Backlog and repeats (a resumed subscription) are history the list already counts.
    if (session && typeof msg.seq === "number" && msg.seq <= session.lastSeq) return;
    if (!session || (!session.active && msg.type !== "complete")) {
      // A container not listed yet, or a new session of an ended one: ask the hub again.
      session = {
        ...(session ?? {}),
        containerID: id,
        status: "running",
        active: true,
        startedAt: when,
        lastActivity: when,
        endedAt: Number.NaN,
        endReason: null,
        exitCode: null,
        lastSeq: session?.lastSeq ?? 0,
        messages: 0,
        subscribers: session?.subscribers ?? 0,
        publishers: 1,
      };
      this.sessions.set(id, session);
      this.stale = true;
    }
    if (typeof msg.seq === "number") session.lastSeq = msg.seq;
    session.messages += 1;
    session.lastActivity = Math.max(session.lastActivity || 0, when);
    const data = msg.data ?? {};
    if (msg.type === "status" && typeof data.status === "string") {
      session.status = data.status === "failed" ? "error" : data.status;
      if (data.reason === "timeout") {
        session.active = false;
        session.endReason = "timeout";
        session.endedAt = when;
      }
    } else if (msg.type === "complete") {
      session.status = "completed";
      session.active = false;
      session.endedAt = when;
      session.endReason = "complete";
      session.exitCode = typeof data.exitCode === "number" ? data.exitCode : null;
    }
    this.changed();
  }

  changed() {
    for (const listener of this.listeners) listener();
  }
}
