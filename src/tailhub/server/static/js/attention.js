/**
 * "Needs me": which sessions wait for a person, as the hub says. No DOM.
 *
 * The hub derives an attention state per session and sends it two ways (protocol:
 * `attention`): as the `attention` field of every session object (the `sessions` reply), and
 * as a live message `{"type": "attention", "containerID": ID, "data": <state or null>}` to
 * subscribers of the container and of `*` whenever it changes. A state reads:
 *
 *     {"state": "waiting", "reason": "permission", "since": "2026-12-05T08:40:00.000Z",
 *      "request": {"id": "req_1", "kind": "permission", "tool": "Bash",
 *                  "input": {"command": "rm -rf build"}, "question": null, "options": null}}
 *
 * `state` is `waiting`, `stalled`, `failed` or `done`; `request` is set only while waiting.
 *
 * The one entry point for both is `attention.receive(msg)` (a live message) and
 * `attention.fromSessions(list)` (a reply's sessions). A session object without the field
 * (a hub that does not derive attention) leaves what is known as it is; a live message newer
 * than the reply (within `PUSH_WINS_MS`) wins over the reply's field. Malformed states are
 * read as null. Listeners hear every change with the container, the state before and after.
 * @module attention
 */

/**
 * @typedef {object} Request what a waiting session waits for
 * @property {string | null} id the pending request (Claude `request_id`, or a tool_use id)
 * @property {string} kind `permission`, `question` or `approval`
 * @property {string | null} tool
 * @property {unknown} input the tool's input, or null
 * @property {string | null} question
 * @property {string[] | null} options
 */

/**
 * @typedef {object} Attention
 * @property {"waiting" | "stalled" | "failed" | "done"} state
 * @property {string} reason
 * @property {number} since Unix ms, or NaN
 * @property {Request | null} request
 */

/** @typedef {(id: string, before: Attention | null, after: Attention | null) => void} Listener */

const STATES = new Set(["waiting", "stalled", "failed", "done"]);
/** A live message this recent (ms) is newer than a `sessions` reply's field. */
export const PUSH_WINS_MS = 3000;

/** @param {unknown} value @returns {value is Record<string, any>} */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** @param {unknown} value */
function textOrNull(value) {
  return typeof value === "string" ? value : null;
}

/**
 * The attention state in `data`, or null when there is none or it is not one.
 * @param {unknown} data
 * @returns {Attention | null}
 */
export function parseAttention(data) {
  if (!isObject(data) || !STATES.has(data.state)) return null;
  const state = /** @type {Attention["state"]} */ (data.state);
  /** @type {Request | null} */
  let request = null;
  if (state === "waiting") {
    const raw = isObject(data.request) ? data.request : {};
    const options = Array.isArray(raw.options)
      ? raw.options.map((option) => (typeof option === "string" ? option : JSON.stringify(option)))
      : null;
    request = {
      id: textOrNull(raw.id),
      kind: textOrNull(raw.kind) ?? textOrNull(data.reason) ?? "permission",
      tool: textOrNull(raw.tool),
      input: raw.input ?? null,
      question: textOrNull(raw.question),
      options,
    };
  }
  return {
    state,
    reason: textOrNull(data.reason) ?? "",
    since: typeof data.since === "string" ? Date.parse(data.since) : Number.NaN,
    request,
  };
}

/** @param {Attention | null} a */
function waitingKey(a) {
  return a?.state === "waiting" ? `${a.request?.kind}:${a.request?.id}` : "";
}

export class AttentionStore {
  constructor() {
    /** @type {Map<string, Attention>} */
    this.states = new Map();
    /** @type {Map<string, number>} when each container's last live message came */
    this.pushedAt = new Map();
    /** @type {Set<Listener>} */
    this.listeners = new Set();
  }

  /** @param {string} id */
  get(id) {
    return this.states.get(id) ?? null;
  }

  /** The request a session waits on, or null. @param {string} id */
  waiting(id) {
    const a = this.states.get(id);
    return a?.state === "waiting" ? a : null;
  }

  /** The containers that wait for a person. */
  waitingIds() {
    return [...this.states].filter(([, a]) => a.state === "waiting").map(([id]) => id);
  }

  /**
   * Takes a live `attention` message from the hub.
   * @param {Record<string, any>} msg
   * @returns {boolean} whether it was one
   */
  receive(msg) {
    if (!isObject(msg) || msg.type !== "attention" || typeof msg.containerID !== "string") {
      return false;
    }
    this.pushedAt.set(msg.containerID, Date.now());
    this.set(msg.containerID, parseAttention(msg.data));
    return true;
  }

  /**
   * Takes the `attention` field of the sessions of a `sessions` reply (or the HTTP list).
   * @param {Array<Record<string, any>>} sessions
   */
  fromSessions(sessions) {
    const now = Date.now();
    /** @type {Map<string, Record<string, any>>} */
    const chosen = new Map();
    for (const session of sessions) {
      if (!isObject(session) || typeof session.containerID !== "string") continue;
      if (!("attention" in session)) continue;
      const other = chosen.get(session.containerID);
      // One container may be listed twice (an ended session and a newer one): the active one.
      if (!other || (session.active && !other.active)) chosen.set(session.containerID, session);
    }
    for (const [id, session] of chosen) {
      if (now - (this.pushedAt.get(id) ?? 0) < PUSH_WINS_MS) continue;
      this.set(id, parseAttention(session.attention));
    }
  }

  /**
   * @param {string} id
   * @param {Attention | null} next
   */
  set(id, next) {
    const before = this.get(id);
    if (next) this.states.set(id, next);
    else this.states.delete(id);
    if (JSON.stringify(before) === JSON.stringify(next)) return;
    for (const listener of this.listeners) listener(id, before, next);
  }

  /**
   * Whether a change made a session start waiting (or wait on another request).
   * @param {Attention | null} before
   * @param {Attention | null} after
   */
  static startsWaiting(before, after) {
    return after?.state === "waiting" && waitingKey(before) !== waitingKey(after);
  }
}

/** The page's one store: `main.js` feeds it, the views read it (and tests can drive it). */
export const attention = new AttentionStore();
