/**
 * The session list: one card per container with its status badge, start, duration, last
 * activity, message count and viewers. Clicking a container opens it alone; its checkbox (or
 * Ctrl/⌘-click) adds it to the containers in view.
 * @module sessions-view
 */

import { ago, count, duration, moment } from "./format.js";

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
   * @param {SessionStore} options.store
   * @param {() => Set<string>} options.selected the containers in view
   * @param {(id: string, additive: boolean) => void} options.onPick
   */
  constructor({ list, summary, search, showEnded, store, selected, onPick }) {
    this.list = list;
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
    const took = span("fact");
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
    const all = this.store.list();
    const selected = this.selected();
    const active = all.filter((s) => s.active).length;
    setText(
      this.summary,
      this.store.loaded ? `${count(active)} active · ${count(all.length - active)} ended` : "Loading…",
    );
    const shown = all.filter(
      (s) =>
        (s.active || this.showEnded.checked || selected.has(s.containerID)) &&
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
    let status = s.status;
    if (s.endReason === "timeout") status = "timed out";
    if (s.exitCode !== null) status += ` · exit ${s.exitCode}`;
    card.badge.className = `badge st-${s.status}${s.exitCode ? " st-nonzero" : ""}`;
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
