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
 * @property {string} status `starting`, `running`, `completed`, `error`, `cancelled`
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

/** An active session silent this long (ms) is stalled: heartbeats alone arrive every 30 s. */
export const STALLED_MS = 90_000;

/**
 * Why a session needs a person, or "" when it does not: it failed (`error`), it timed out
 * without completing, or it is active and has sent nothing, not even a heartbeat, for
 * `STALLED_MS`. A cancelled session was stopped by a person: it needs no one.
 * @param {Session} s
 * @param {number} now Unix ms
 */
export function attention(s, now) {
  if (s.status === "error") return "failed";
  if (s.endReason === "timeout") return "timed out";
  if (s.active && now - s.lastActivity > STALLED_MS) return "stalled";
  return "";
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

  /**
   * Sessions to list: those that need attention first (see `attention`), then active ones,
   * each group newest start first.
   * @param {number} [now] Unix ms
   */
  list(now = Date.now()) {
    const needs = new Map([...this.sessions.values()].map((s) => [s, attention(s, now) !== ""]));
    return [...this.sessions.values()].sort(
      (a, b) =>
        Number(needs.get(b)) - Number(needs.get(a)) ||
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
    const data = msg.data ?? {};
    if (msg.type === "status" && data.status === "starting" && session.messages > 0) {
      // A new run of a container whose session is still open: its counts start again.
      session.startedAt = when;
      session.messages = 0;
      session.exitCode = null;
    }
    if (typeof msg.seq === "number") session.lastSeq = msg.seq;
    session.messages += 1;
    session.lastActivity = Math.max(session.lastActivity || 0, when);
    if (msg.type === "status" && typeof data.status === "string") {
      session.status = data.status === "failed" ? "error" : data.status;
      if (data.reason === "timeout") {
        session.active = false;
        session.endReason = "timeout";
        session.endedAt = when;
      }
    } else if (msg.type === "complete") {
      const code = data.exitCode;
      if (data.cancelled === true || session.status === "cancelled") session.status = "cancelled";
      else session.status = code === 0 ? "completed" : "error";
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
