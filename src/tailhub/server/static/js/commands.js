/**
 * Commands to containers (protocol §3, `command`): sends them and matches the hub's answers.
 *
 * The hub answers every command, in the order it got them, with `command_sent` (how many of
 * the container's connections got it) or with an `error` that names the container. So each
 * container keeps a queue of the commands still waiting for their answer, and an answer goes
 * to the oldest one. Nothing is queued while the link is down: a command sent then fails at
 * once, and the commands still waiting when the link drops are reported as unconfirmed.
 * No DOM here; `steer.js` shows the outcomes.
 * @module commands
 */

/**
 * @typedef {object} Outcome what became of a command
 * @property {"pending" | "sent" | "failed"} state
 * @property {string} label what was sent: `input`, `EOF`, `cancel`
 * @property {string} text the outcome in words, ready to show
 * @property {string} [code] the hub's error code, when it refused the command
 * @property {number} [delivered] how many connections got it
 */

/** @typedef {(id: string | null, outcome?: Outcome) => void} Listener `id` null: the link
 *   came up or went down */

/**
 * Error codes the hub answers a command with. `no_container` only ever answers a command;
 * the others may also answer a subscription, so they count only while a command is waiting.
 */
const NO_CONTAINER = "no_container";
const COMMAND_ERRORS = new Set([
  NO_CONTAINER,
  "forbidden",
  "invalid_message",
  "rate_limited",
  "not_pending", // an approve or deny of a request that is no longer pending
]);

/** @param {number} n */
function connections(n) {
  return `${n} connection${n === 1 ? "" : "s"}`;
}

export class Commands {
  /** @param {(msg: object) => boolean} send sends a message to the hub; false if it cannot */
  constructor(send) {
    this.transmit = send;
    /** Whether the link to the hub is up. */
    this.online = false;
    /** Whether the token may send commands (operator, admin); a viewer's may not. */
    this.allowed = true;
    /** @type {Map<string, {action: string, label: string}[]>} unanswered, by container */
    this.waiting = new Map();
    /** @type {Set<Listener>} */
    this.listeners = new Set();
  }

  /** Asks the container to stop. @param {string} id */
  cancel(id) {
    return this.send(id, { action: "cancel" }, "cancel");
  }

  /**
   * Writes `text` to the container's input, as typed: a line is sent with its newline.
   * @param {string} id
   * @param {string} text
   */
  input(id, text) {
    return this.send(id, { action: "input", text }, "input");
  }

  /** Closes the container's input (end of file). @param {string} id */
  endOfInput(id) {
    return this.send(id, { action: "input", text: "", eof: true }, "EOF");
  }

  /**
   * @param {string} id
   * @param {{action: string} & Record<string, unknown>} data
   * @param {string} label
   * @returns {boolean} whether it went out
   */
  send(id, data, label) {
    if (!this.online || !this.transmit({ type: "command", containerID: id, data })) {
      const text = `${label} not sent: not connected to the hub`;
      this.emit(id, { state: "failed", label, text });
      return false;
    }
    const queue = this.waiting.get(id) ?? [];
    queue.push({ action: data.action, label });
    this.waiting.set(id, queue);
    this.emit(id, { state: "pending", label, text: `${label}: sending…` });
    return true;
  }

  /**
   * Takes a message from the hub if it answers a command.
   * @param {Record<string, any>} msg
   * @returns {boolean} whether it did (the caller need not show it)
   */
  take(msg) {
    const id = msg.containerID;
    if (typeof id !== "string") return false;
    if (msg.type === "command_sent") {
      const action = String(msg.data?.action ?? "");
      const { label } = this.settle(id, action) ?? { label: action };
      const delivered = Number(msg.data?.delivered) || 0;
      this.emit(id, {
        state: "sent",
        label,
        delivered,
        text: `${label} sent to ${connections(delivered)}`,
      });
      return true;
    }
    if (msg.type !== "error" || typeof msg.seq === "number") return false;
    const code = String(msg.data?.code ?? "error");
    if (!COMMAND_ERRORS.has(code)) return false;
    if (code !== NO_CONTAINER && !this.waiting.get(id)?.length) return false;
    const { label } = this.settle(id) ?? { label: "command" };
    const words = typeof msg.data?.error === "string" ? msg.data.error : "refused";
    this.emit(id, { state: "failed", label, code, text: `${label} not sent: ${code}: ${words}` });
    return true;
  }

  /**
   * Removes the command an answer is about: the oldest waiting (with `action`, when given).
   * @param {string} id
   * @param {string} [action]
   */
  settle(id, action) {
    const queue = this.waiting.get(id);
    if (!queue?.length) return undefined;
    let at = action === undefined ? 0 : queue.findIndex((item) => item.action === action);
    if (at === -1) at = 0;
    const [item] = queue.splice(at, 1);
    if (!queue.length) this.waiting.delete(id);
    return item;
  }

  /**
   * Follows the link: commands are possible only while it is up; those still waiting when it
   * goes down will get no answer.
   * @param {boolean} online
   */
  setOnline(online) {
    if (online === this.online) return;
    this.online = online;
    if (!online) {
      const waiting = this.waiting;
      this.waiting = new Map();
      for (const [id, queue] of waiting) {
        for (const { label } of queue) {
          this.emit(id, {
            state: "failed",
            label,
            text: `${label} not confirmed: the link to the hub dropped`,
          });
        }
      }
    }
    this.emit(null);
  }

  /**
   * Whether the token may send commands, as the hub's `authenticated` reply says.
   * @param {boolean} allowed
   */
  setAllowed(allowed) {
    if (allowed === this.allowed) return;
    this.allowed = allowed;
    this.emit(null);
  }

  /** @param {string | null} id @param {Outcome} [outcome] */
  emit(id, outcome) {
    for (const listener of this.listeners) listener(id, outcome);
  }
}
