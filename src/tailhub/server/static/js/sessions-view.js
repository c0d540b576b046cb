/**
 * The session list: one card per container with its status badge, start, duration, last
 * activity, message count and viewers (or, compact, one line: ID, badge, duration). Sessions
 * that need attention come first and are marked; the status filter narrows the list. Clicking
 * a container opens it alone; its checkbox (or Ctrl/⌘-click) adds it to the containers in
 * view.
 * @module sessions-view
 */

import { ago, count, duration, moment } from "./format.js";
import { attention } from "./sessions.js";

/**
 * Whether a session passes the status filter.
 * @param {Session} s
 * @param {string} filter `all`, `attention`, `active`, or a status
 * @param {number} now
 */
function passes(s, filter, now) {
  if (filter === "all") return true;
  if (filter === "attention") return attention(s, now) !== "";
  if (filter === "active") return s.active;
  return s.status === filter;
}

/** @typedef {import("./sessions.js").Session} Session */
/** @typedef {import("./sessions.js").SessionStore} SessionStore */

/**
 * @typedef {object} Card
 * @property {HTMLLIElement} item
 * @property {HTMLInputElement} check
 * @property {HTMLButtonElement} open
 * @property {HTMLElement} badge
 * @property {HTMLElement} started
 * @property {HTMLElement} took
 * @property {HTMLElement} last
 * @property {HTMLElement} messages
 * @property {HTMLElement} viewers
 */

/** @param {HTMLElement} node @param {string} text */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** @param {string} className @param {string} [text] */
function span(className, text = "") {
  const node = document.createElement("span");
  node.className = className;
  node.textContent = text;
  return node;
}

export class SessionsView {
  /**
   * @param {object} options
   * @param {HTMLUListElement} options.list where the cards go
   * @param {HTMLElement} options.summary the count line
   * @param {HTMLInputElement} options.search filters cards by containerID
   * @param {HTMLInputElement} options.showEnded
   * @param {HTMLSelectElement} options.status the status filter
   * @param {HTMLInputElement} options.compact one line per session
   * @param {SessionStore} options.store
   * @param {() => Set<string>} options.selected the containers in view
   * @param {(id: string, additive: boolean) => void} options.onPick
   */
  constructor({ list, summary, search, showEnded, status, compact, store, selected, onPick }) {
    this.list = list;
    this.status = status;
    this.compact = compact;
    status.addEventListener("change", () => this.schedule());
    compact.addEventListener("change", () => {
      try {
        localStorage.setItem("tailhub.compact", compact.checked ? "1" : "0");
      } catch {
        // storage unavailable: the choice lasts as long as the page
      }
      this.schedule();
    });
    try {
      compact.checked = localStorage.getItem("tailhub.compact") === "1";
    } catch {
      // storage unavailable: not compact
    }
    this.summary = summary;
    this.search = search;
    this.showEnded = showEnded;
    this.store = store;
    this.selected = selected;
    this.onPick = onPick;
    /** @type {Map<string, Card>} */
    this.cards = new Map();
    this.frame = 0;
    search.addEventListener("input", () => this.schedule());
    showEnded.addEventListener("change", () => this.schedule());
    store.listeners.add(() => this.schedule());
    list.addEventListener("keydown", (event) => this.keydown(event));
  }

  schedule() {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }
  }

  /** @param {string} id */
  card(id) {
    let card = this.cards.get(id);
    if (card) return card;
    const item = document.createElement("li");
    item.className = "session";
    item.dataset.cid = id;
    const check = document.createElement("input");
    check.type = "checkbox";
    check.className = "session-check";
    check.setAttribute("aria-label", `Show ${id} in the view`);
    check.addEventListener("change", () => this.onPick(id, true));
    const open = document.createElement("button");
    open.type = "button";
    open.className = "session-open";
    open.title = "Open (Ctrl-click to add to the view)";
    open.addEventListener("click", (event) =>
      this.onPick(id, event.ctrlKey || event.metaKey || event.shiftKey),
    );
    const badge = span("badge");
    open.append(span("session-id", id), badge);
    const facts = document.createElement("div");
    facts.className = "session-facts";
    const started = span("fact");
    const took = span("fact fact-took");
    const last = span("fact");
    const messages = span("fact");
    const viewers = span("fact");
    facts.append(started, took, last, messages, viewers);
    item.append(check, open, facts);
    card = { item, check, open, badge, started, took, last, messages, viewers };
    this.cards.set(id, card);
    return card;
  }

  render() {
    const now = Date.now();
    const needle = this.search.value.trim().toLowerCase();
    const all = this.store.list(now);
    const selected = this.selected();
    const active = all.filter((s) => s.active).length;
    const needing = all.filter((s) => attention(s, now) !== "").length;
    setText(
      this.summary,
      this.store.loaded
        ? `${count(active)} active · ${count(all.length - active)} ended${needing ? ` · ${count(needing)} need attention` : ""}`
        : "Loading…",
    );
    const option = this.status.querySelector('option[value="attention"]');
    if (option) setText(/** @type {HTMLElement} */ (option), `Needs attention (${count(needing)})`);
    const filter = this.status.value;
    this.list.classList.toggle("compact", this.compact.checked);
    const shown = all.filter(
      (s) =>
        (s.active || this.showEnded.checked || selected.has(s.containerID) || filter !== "all") &&
        passes(s, filter, now) &&
        (!needle || s.containerID.toLowerCase().includes(needle)),
    );
    const keep = new Set(shown.map((s) => s.containerID));
    for (const [id, card] of this.cards) {
      if (!keep.has(id)) {
        card.item.remove();
        this.cards.delete(id);
      }
    }
    /** @type {ChildNode | null} */
    let cursor = this.list.firstChild;
    for (const session of shown) {
      const card = this.card(session.containerID);
      this.fill(card, session, selected.has(session.containerID), now);
      if (card.item === cursor) cursor = cursor.nextSibling;
      else this.list.insertBefore(card.item, cursor);
    }
    this.list.dataset.empty = shown.length ? "" : this.store.loaded ? "none" : "loading";
  }

  /**
   * @param {Card} card
   * @param {Session} s
   * @param {boolean} selected
   * @param {number} now
   */
  fill(card, s, selected, now) {
    card.item.classList.toggle("selected", selected);
    card.item.classList.toggle("ended", !s.active);
    card.check.checked = selected;
    card.open.setAttribute("aria-pressed", String(selected));
    const why = attention(s, now);
    card.item.classList.toggle("attention", why !== "");
    card.item.title = why ? `needs attention: ${why}` : "";
    let status = s.status;
    if (s.endReason === "timeout") status = "timed out";
    else if (why === "stalled") status += " · stalled";
    // A cancelled run's exit code is the signal that stopped it: the badge says cancelled.
    if (s.exitCode !== null && s.status !== "cancelled") status += ` · exit ${s.exitCode}`;
    const nonzero = s.exitCode && s.status !== "cancelled" ? " st-nonzero" : "";
    card.badge.className = `badge st-${s.status}${nonzero}`;
    setText(card.badge, status);
    setText(card.started, `started ${moment(s.startedAt, now)}`);
    card.started.title = Number.isFinite(s.startedAt) ? new Date(s.startedAt).toString() : "";
    const end = s.active ? now : s.endedAt;
    setText(card.took, duration(end - s.startedAt));
    card.took.title = s.active ? "running for" : "took";
    setText(card.last, s.active ? `active ${ago(s.lastActivity, now)}` : `ended ${ago(end, now)}`);
    card.last.title = Number.isFinite(s.lastActivity)
      ? `last activity ${new Date(s.lastActivity).toString()}`
      : "";
    setText(card.messages, `${count(s.messages)} ${s.messages === 1 ? "msg" : "msgs"}`);
    card.messages.title = `last seq ${s.lastSeq}`;
    setText(card.viewers, `${count(s.subscribers)} viewer${s.subscribers === 1 ? "" : "s"}`);
    card.viewers.title = `${s.subscribers} viewer${s.subscribers === 1 ? "" : "s"}, ${s.publishers} publisher${s.publishers === 1 ? "" : "s"}`;
  }

  /** Arrow keys move between the cards' open buttons. @param {KeyboardEvent} event */
  keydown(event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const buttons = [...this.list.querySelectorAll(".session-open")];
    const at = buttons.indexOf(/** @type {Element} */ (document.activeElement));
    if (at === -1) return;
    const next = buttons[at + (event.key === "ArrowDown" ? 1 : -1)];
    if (next) {
      event.preventDefault();
      /** @type {HTMLElement} */ (next).focus();
    }
  }
}
