/**
 * The page's one WebSocket to the hub: authenticate, hand on messages, reconnect.
 *
 * The token travels in the first frame (`{"type": "auth"}`), not in the URL, so a wrong token
 * is told apart from a hub that is down (`unauthorized` and close 4401, against a failed
 * handshake). After any other close the connection retries with exponential backoff and
 * jitter; each time it is authenticated again it calls `onReady`, where the caller
 * re-subscribes (with `since`, to resume). Close codes the protocol marks as final (4401,
 * 4403, 1008) stop the retries.
 * @module connection
 */

/**
 * @typedef {"connecting" | "open" | "waiting" | "unauthorized" | "forbidden" | "stopped"} State
 */

/**
 * @typedef {{retryAt?: number, reason?: string, code?: number}} Detail what a state change
 *   is about: when the next attempt is due, the close reason and code
 */

/**
 * @typedef {object} Handlers
 * @property {(msg: Record<string, any>) => void} onMessage every message after authentication
 * @property {(grant: Record<string, any> | null) => void} onReady authenticated, with what
 *   the token allows (its role and containers): (re)send subscriptions now
 * @property {(state: State, detail: Detail) => void} onState
 */

const FINAL = new Map([
  [4401, "unauthorized"],
  [4403, "forbidden"],
  [1008, "forbidden"],
]);

export class HubConnection {
  /**
   * @param {string} url the hub's WebSocket URL, without a token
   * @param {string} token
   * @param {Handlers} handlers
   * @param {{minDelay?: number, maxDelay?: number, silence?: number}} [timing] in ms: first
   *   and largest retry delay; how long without any frame before the link is presumed dead
   */
  constructor(url, token, handlers, timing = {}) {
    this.url = url;
    this.token = token;
    this.handlers = handlers;
    this.minDelay = timing.minDelay ?? 250;
    this.maxDelay = timing.maxDelay ?? 8000;
    this.silence = timing.silence ?? 45_000;
    /** @type {WebSocket | null} */
    this.socket = null;
    /** @type {State} */
    this.state = "stopped";
    this.attempt = 0;
    this.lastFrame = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    this.watchdog = setInterval(() => this.checkAlive(), 5000);
    this.wake = () => {
      if (this.state === "waiting") this.connect();
    };
    window.addEventListener("online", this.wake);
  }

  /** @param {State} state @param {Detail} [detail] */
  setState(state, detail = {}) {
    this.state = state;
    this.handlers.onState(state, detail);
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.setState("connecting");
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.scheduleRetry(String(error));
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.lastFrame = Date.now();
      socket.send(JSON.stringify({ type: "auth", token: this.token }));
    });
    socket.addEventListener("message", (event) => this.receive(socket, event));
    socket.addEventListener("close", (event) => this.closed(socket, event));
  }

  /** @param {WebSocket} socket @param {MessageEvent} event */
  receive(socket, event) {
    if (socket !== this.socket) return;
    this.lastFrame = Date.now();
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (this.state === "connecting") {
      if (msg.type === "authenticated") {
        this.attempt = 0;
        this.setState("open");
        this.handlers.onReady(msg.data ?? null);
        return;
      }
      if (msg.type === "error" && msg.data?.code === "unauthorized") return; // the close follows
    }
    this.handlers.onMessage(msg);
  }

  /** @param {WebSocket} socket @param {CloseEvent} event */
  closed(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    if (this.state === "stopped") return;
    const final = FINAL.get(event.code);
    if (final) {
      this.setState(/** @type {State} */ (final), { reason: event.reason, code: event.code });
      return;
    }
    this.scheduleRetry(event.reason || `closed (${event.code})`);
  }

  /** @param {string} reason */
  scheduleRetry(reason) {
    const base = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt);
    const delay = base * (0.75 + Math.random() * 0.5);
    this.attempt++;
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.setState("waiting", { retryAt: Date.now() + delay, reason });
  }

  /** A link that carries nothing for `silence` ms (the page asks for sessions every few
   * seconds, so the hub always has something to say) is closed and reconnected. */
  checkAlive() {
    if (this.state === "open" && Date.now() - this.lastFrame > this.silence) {
      const socket = this.socket;
      this.socket = null;
      socket?.close();
      this.scheduleRetry("no answer from the hub");
    }
  }

  /**
   * Sends a message if the link is up; returns whether it was sent. Nothing is queued: what
   * matters (the subscriptions) is sent again by `onReady`.
   * @param {object} msg
   */
  send(msg) {
    if (this.state !== "open" || !this.socket) return false;
    this.socket.send(JSON.stringify(msg));
    return true;
  }

  /** Closes the link for good. */
  stop() {
    this.setState("stopped");
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    window.removeEventListener("online", this.wake);
    this.socket?.close(1000);
    this.socket = null;
  }
}
