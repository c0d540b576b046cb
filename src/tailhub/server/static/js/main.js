/**
 * The dashboard: wires the token, the hub connection, the stores and the views together.
 *
 * Data flow: every frame from the hub goes to `route`. Routed messages (with a `seq`) update
 * the session list and, for containers this page has opened, their logs; the views redraw
 * from the stores at most once per animation frame. On every (re)connection the page
 * subscribes to `*` (live events for the list) and to each container in view with `since` =
 * the last `seq` it holds without a gap, or with `tail` the first time.
 * @module main
 */

import { HubConnection } from "./connection.js";
import { Commands } from "./commands.js";
import { LogStore } from "./container-log.js";
import { SessionStore } from "./sessions.js";
import { Filter } from "./filter.js";
import { FILTER_LEVELS } from "./entry.js";
import { SessionsView } from "./sessions-view.js";
import { Workspace } from "./workspace.js";
import { FleetCost } from "./fleet.js";
import { attention } from "./attention.js";
import { NeedsMe, describeRequest } from "./needs-me.js";
import { askForToken, forgetToken, saveToken, storedToken, takeTokenFromUrl } from "./token.js";

/** How many recent messages a container's log starts with. */
const TAIL = 5000;
/** How often the session list is asked for again (live events keep it current between). */
const REFRESH_MS = 5000;
/** After an agent event, how soon the list (with the hub's agent summaries) is asked for. */
const AGENT_REFRESH_MS = 1500;

/** @param {string} id @returns {any} */
function $(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`dashboard markup lacks #${id}`);
  return node;
}

class Dashboard {
  /** @param {string} token */
  constructor(token) {
    this.token = token;
    this.logs = new LogStore();
    this.sessions = new SessionStore();
    this.filter = new Filter();
    this.commands = new Commands((msg) => this.send(msg));
    /** @type {string[]} containers in view, in the order chosen */
    this.selected = [];
    /** @type {Set<string>} containers this page has asked the hub for */
    this.subscribed = new Set();
    /** @type {"merged" | "split"} */
    this.layout = "split";
    /** @type {HubConnection | null} */
    this.connection = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.refreshTimer = undefined;
    /** When the next reconnection attempt is due (Unix ms). */
    this.retryAt = 0;
    this.readHash();

    const lineHeight = Number.parseFloat(
      getComputedStyle(document.documentElement).getPropertyValue("--line-height"),
    );
    this.workspace = new Workspace({
      root: $("panes"),
      placeholder: $("placeholder"),
      logs: this.logs,
      filter: this.filter,
      sessions: this.sessions,
      commands: this.commands,
      lineHeight: Number.isFinite(lineHeight) && lineHeight > 0 ? lineHeight : 20,
      onClose: (id) => this.pick(id, true),
      onEarlier: (id) => this.send(this.logs.open(id).earlierMessage(TAIL)),
    });
    this.needsMe = new NeedsMe({
      toggle: $("needs-me"),
      count: $("needs-me-count"),
      allow: $("allow-notify"),
      onOpen: (id) => this.pick(id, false),
      onChange: () => this.sessionsView.schedule(),
    });
    this.sessionsView = new SessionsView({
      list: $("session-list"),
      summary: $("session-summary"),
      search: $("session-search"),
      showEnded: $("show-ended"),
      status: $("status-filter"),
      compact: $("compact"),
      store: this.sessions,
      selected: () => new Set(this.selected),
      onPick: (id, additive) => this.pick(id, additive),
      needsMe: {
        passes: (id) => this.needsMe.passes(id),
        waiting: (id) => {
          const waiting = attention.waiting(id);
          return waiting ? describeRequest(waiting.request) || waiting.reason : "";
        },
      },
    });
    this.fleet = new FleetCost($("fleet-cost"), () => this.token);
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.agentTimer = undefined;
    this.sessions.listeners.add(() => this.workspace.scheduleStatus());
    this.bindToolbar();
    this.bindStatus();
    setInterval(() => this.refreshSessions(), REFRESH_MS);
    setInterval(() => {
      this.sessionsView.schedule();
      this.workspace.updateStatus();
      this.showCountdown();
    }, 1000);
    this.apply();
  }

  connect() {
    this.connection?.stop();
    const url = new URL(".", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.search = "";
    url.hash = "";
    this.connection = new HubConnection(url.href, this.token, {
      onMessage: (msg) => this.route(msg),
      onReady: (grant) => {
        this.showGrant(grant);
        this.resubscribe();
      },
      onState: (state, detail) => this.showState(state, detail),
    });
    this.connection.connect();
  }

  /** @param {object} msg */
  send(msg) {
    return this.connection?.send(msg) ?? false;
  }

  /**
   * Shows what the token allows, and offers only that: a viewer's token gets no steering.
   * @param {Record<string, any> | null} grant the `authenticated` reply's data (none from
   *   an older hub: everything, as before)
   */
  showGrant(grant) {
    const role = typeof grant?.role === "string" ? grant.role : "admin";
    document.body.dataset.role = role;
    // Controls that send commands (the agents' Approve, Deny and reply among them) hide by CSS.
    document.body.dataset.command = String(grant?.command !== false);
    const badge = $("role");
    const scope = Array.isArray(grant?.containers) ? grant.containers.join(", ") : "";
    badge.hidden = role === "admin";
    badge.textContent = role === "admin" ? "" : `${role} · ${scope}`;
    badge.title = grant?.sub ? `Token for ${grant.sub}` : "";
    this.commands.setAllowed(grant?.command !== false);
  }

  /** Sends every subscription this page needs; called on each (re)connection. */
  resubscribe() {
    this.send({ type: "subscribe", containerID: "*" });
    this.refreshSessions();
    for (const id of this.selected) this.send(this.logs.open(id).subscribeMessage(TAIL));
  }

  /** @param {Record<string, any>} msg */
  route(msg) {
    switch (msg.type) {
      case "log":
      case "status":
      case "complete":
      case "error":
        if (typeof msg.seq === "number" && typeof msg.containerID === "string") {
          this.sessions.note(msg);
          this.logs.get(msg.containerID)?.add(msg);
          if (this.sessions.stale || msg.type === "complete") this.refreshSoon();
          else if (msg.data?.metadata?.agent) this.refreshForAgents();
        } else if (msg.type === "error" && !this.commands.take(msg)) {
          this.hubError(msg);
        }
        break;
      case "command_sent":
        this.commands.take(msg);
        break;
      case "subscribed": {
        const id = msg.containerID;
        const log = typeof id === "string" && !id.includes("*") ? this.logs.get(id) : undefined;
        if (log?.subscribed(msg, TAIL) && this.selected.includes(id)) {
          this.send(log.subscribeMessage(TAIL));
        }
        if (log) this.refreshSoon(); // the viewer count changed
        if (log && log.lost) {
          this.notify(`${id}: ${log.lost} older messages are no longer kept by the hub.`);
          log.lost = 0;
        }
        break;
      }
      case "sessions": {
        const list = Array.isArray(msg.data?.sessions) ? msg.data.sessions : [];
        attention.fromSessions(list);
        this.sessions.replace(list);
        break;
      }
      case "attention":
        attention.receive(msg);
        break;
      default:
        break; // heartbeat, unsubscribed, ack: nothing to show
    }
  }

  /** @param {Record<string, any>} msg an error from the hub itself (no `seq`) */
  hubError(msg) {
    const code = msg.data?.code ?? "error";
    if (code === "not_subscribed") return;
    const about = msg.containerID ? `${msg.containerID}: ` : "";
    this.notify(`${about}${msg.data?.error ?? "the hub refused a request"} (${code})`);
  }

  refreshSessions() {
    if (this.send({ type: "sessions" })) this.fleet.refresh();
  }

  /**
   * Asks for the list a little after agent events, once however many arrive: the hub folds
   * them into its summaries (cost, activity) about once a second.
   */
  refreshForAgents() {
    if (this.agentTimer === undefined) {
      this.agentTimer = setTimeout(() => {
        this.agentTimer = undefined;
        this.refreshSessions();
      }, AGENT_REFRESH_MS);
    }
  }

  /** Asks for the session list soon, once, however many events ask for it. */
  refreshSoon() {
    if (this.refreshTimer === undefined) {
      this.refreshTimer = setTimeout(() => {
        this.refreshTimer = undefined;
        this.refreshSessions();
      }, 300);
    }
  }

  /**
   * Opens a container: alone, or added to (removed from) the containers in view.
   * @param {string} id
   * @param {boolean} additive
   */
  pick(id, additive) {
    if (additive) {
      this.selected = this.selected.includes(id)
        ? this.selected.filter((other) => other !== id)
        : [...this.selected, id];
    } else {
      this.selected = [id];
    }
    this.apply();
  }

  /** Makes subscriptions, panes, list and address match `selected`. */
  apply() {
    const wanted = new Set(this.selected);
    for (const id of this.subscribed) {
      if (!wanted.has(id)) this.send({ type: "unsubscribe", containerID: id });
    }
    for (const id of wanted) {
      if (!this.subscribed.has(id)) this.send(this.logs.open(id).subscribeMessage(TAIL));
    }
    this.subscribed = wanted;
    this.workspace.show(this.selected, this.layout);
    this.sessionsView.schedule();
    $("layout").hidden = this.selected.length < 2;
    this.writeHash();
  }

  readHash() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    const view = params.get("view");
    this.selected = view ? [...new Set(view.split(",").filter(Boolean))] : [];
    this.layout = params.get("layout") === "merged" ? "merged" : "split";
  }

  writeHash() {
    const params = new URLSearchParams();
    if (this.selected.length) params.set("view", this.selected.join(","));
    if (this.layout === "merged") params.set("layout", "merged");
    const hash = params.toString();
    const url = `${window.location.pathname}${window.location.search}${hash ? `#${hash}` : ""}`;
    window.history.replaceState(window.history.state, "", url);
  }

  bindToolbar() {
    const levels = () =>
      FILTER_LEVELS.filter((level) => /** @type {HTMLInputElement} */ ($(`level-${level}`)).checked);
    for (const level of FILTER_LEVELS) {
      $(`level-${level}`).addEventListener("change", () => this.filter.set({ levels: levels() }));
    }
    const search = /** @type {HTMLInputElement} */ ($("search"));
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let typing;
    search.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => this.filter.set({ query: search.value }), 120);
    });
    search.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        search.value = "";
        this.filter.set({ query: "" });
      } else if (event.key === "Enter") {
        clearTimeout(typing);
        this.filter.set({ query: search.value });
      }
    });
    const wrap = /** @type {HTMLInputElement} */ ($("wrap-lines"));
    try {
      wrap.checked = localStorage.getItem("tailhub.wrap") === "1";
    } catch {
      // storage unavailable: lines do not wrap
    }
    this.filter.set({ wrap: wrap.checked });
    wrap.addEventListener("change", () => {
      try {
        localStorage.setItem("tailhub.wrap", wrap.checked ? "1" : "0");
      } catch {
        // storage unavailable: the choice lasts as long as the page
      }
      this.filter.set({ wrap: wrap.checked });
    });
    const only = /** @type {HTMLInputElement} */ ($("only-matching"));
    only.addEventListener("change", () => this.filter.set({ only: only.checked }));
    for (const radio of document.querySelectorAll('input[name="layout"]')) {
      const input = /** @type {HTMLInputElement} */ (radio);
      input.checked = input.value === this.layout;
      input.addEventListener("change", () => {
        if (input.checked) {
          this.layout = input.value === "merged" ? "merged" : "split";
          this.apply();
        }
      });
    }
    document.addEventListener("keydown", (event) => {
      const target = /** @type {HTMLElement} */ (event.target);
      const typingInField = target.closest("input, textarea, select, [contenteditable]");
      if (event.key === "/" && !typingInField && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        search.focus();
        search.select();
      }
    });
  }

  bindStatus() {
    $("retry").addEventListener("click", () => this.connection?.connect());
    $("change-token").addEventListener("click", () => this.reauthenticate());
  }

  /**
   * @param {import("./connection.js").State} state
   * @param {import("./connection.js").Detail} detail
   */
  showState(state, detail) {
    const box = $("conn");
    const text = $("conn-text");
    box.dataset.state = state;
    this.commands.setOnline(state === "open");
    $("retry").hidden = state !== "waiting";
    switch (state) {
      case "open":
        text.textContent = "Live";
        break;
      case "connecting":
        text.textContent = "Connecting…";
        break;
      case "waiting":
        this.retryAt = detail.retryAt ?? 0;
        this.showCountdown();
        break;
      case "unauthorized":
        text.textContent = "Token refused";
        this.reauthenticate("The hub refused this token. Enter a valid one.");
        break;
      case "forbidden":
        text.textContent = "Not allowed";
        this.notify(
          detail.code === 1008
            ? "The hub does not accept connections from this page's address (origin)."
            : "The hub does not allow this token to watch containers.",
        );
        break;
      default:
        text.textContent = "Offline";
    }
    box.title = detail.reason ?? "";
  }

  /** While waiting to reconnect, says in how long (called every second). */
  showCountdown() {
    if (this.connection?.state !== "waiting") return;
    const seconds = Math.ceil((this.retryAt - Date.now()) / 1000);
    $("conn-text").textContent = seconds > 0 ? `Reconnecting in ${seconds} s…` : "Reconnecting…";
  }

  /**
   * Asks for a new token. When the hub refused the current one (`problem`), the old one is
   * forgotten at once; when the user just wants to change it, nothing changes until a new
   * token is entered, and cancelling keeps the connection as it is.
   * @param {string} [problem]
   */
  async reauthenticate(problem) {
    if (problem) forgetToken();
    const answer = await askForToken($("token-form"), { problem, cancellable: !problem });
    if (!answer) return;
    saveToken(answer.token, answer.remember);
    this.token = answer.token;
    this.connect();
  }

  /** Shows a short notice that goes away by itself. @param {string} text */
  notify(text) {
    const toast = document.createElement("div");
    toast.className = "toast";
    toast.setAttribute("role", "status");
    toast.textContent = text;
    $("toasts").appendChild(toast);
    setTimeout(() => toast.remove(), 6000);
  }
}

async function main() {
  let token = takeTokenFromUrl() ?? storedToken();
  if (!token) {
    const answer = /** @type {{token: string, remember: boolean}} */ (
      await askForToken($("token-form"))
    );
    saveToken(answer.token, answer.remember);
    token = answer.token;
  }
  const dashboard = new Dashboard(token);
  dashboard.connect();
}

main();
