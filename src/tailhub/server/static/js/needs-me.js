/**
 * "Needs me" on the page: the filter button with its count (also in the tab's title), a
 * browser notification when a session starts waiting while the tab is in the background, and,
 * in a container's pane, the waiting request with *Approve*, *Deny* and a reply box.
 *
 * It reads the attention store (`attention.js`) and answers with the hub's `command`
 * actions `approve` / `deny` (with the request's id and an optional message) and `reply`
 * (text), sent through `commands.js`. The answer controls exist only while the session waits.
 * Text from the agent (tool input, question, options) reaches the page as text only.
 * @module needs-me
 */

import { AttentionStore, attention } from "./attention.js";
import { moment } from "./format.js";

/** @typedef {import("./attention.js").Attention} Attention */
/** @typedef {import("./attention.js").Request} Request */
/** @typedef {import("./commands.js").Commands} Commands */

/** Lines and characters of a request's input shown in the pane. */
const INPUT_LINES = 30;
const INPUT_CHARS = 4000;
/** How long an answer's outcome stays shown (ms). */
const OUTCOME_MS = 8000;
/** Notifications kept for the page (the newest), so they can be closed again. */
const KEEP_NOTIFICATIONS = 20;

/** @type {Notification[]} the notifications this page showed, newest last (at most 20) */
export const notifications = [];

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {string} text @param {string} className @param {string} [label] */
function button(text, className, label) {
  const node = /** @type {HTMLButtonElement} */ (el("button", className, text));
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  return node;
}

/**
 * A request in one line: `Bash: rm -rf build`, the question, or its kind.
 * @param {Request | null} request
 */
export function describeRequest(request) {
  if (!request) return "";
  if (request.question) return request.question;
  const input = request.input;
  let what = "";
  if (input && typeof input === "object" && !Array.isArray(input)) {
    const first = ["command", "file_path", "path", "url", "query", "description", "prompt"]
      .map((key) => /** @type {Record<string, unknown>} */ (input)[key])
      .find((value) => typeof value === "string");
    what = typeof first === "string" ? first.split("\n")[0] : "";
  }
  const tool = request.tool ?? request.kind;
  return what ? `${tool}: ${what}` : tool;
}

/** The filter, its count, the tab title and notifications: one per page. */
export class NeedsMe {
  /**
   * @param {object} options
   * @param {HTMLButtonElement} options.toggle the "Needs me" filter button
   * @param {HTMLElement} options.count its count badge
   * @param {HTMLButtonElement} options.allow asks for permission to notify
   * @param {(id: string) => void} options.onOpen open a container (from a notification)
   * @param {() => void} options.onChange the filter or the waiting sessions changed
   * @param {AttentionStore} [options.store]
   */
  constructor({ toggle, count, allow, onOpen, onChange, store = attention }) {
    this.toggle = toggle;
    this.countBadge = count;
    this.allow = allow;
    this.onOpen = onOpen;
    this.onChange = onChange;
    this.store = store;
    /** Whether the session list shows only the sessions that wait for a person. */
    this.only = false;
    this.title = document.title;
    toggle.addEventListener("click", () => {
      this.only = !this.only;
      toggle.setAttribute("aria-pressed", String(this.only));
      this.onChange();
    });
    allow.addEventListener("click", async () => {
      try {
        await Notification.requestPermission();
      } finally {
        this.showAllow();
      }
    });
    this.showAllow();
    store.listeners.add((id, before, after) => {
      if (AttentionStore.startsWaiting(before, after)) this.notify(id, /** @type {Attention} */ (after));
      this.update();
      this.onChange();
    });
    this.update();
  }

  /** Whether a session passes the filter. @param {string} id */
  passes(id) {
    return !this.only || this.store.waiting(id) !== null;
  }

  update() {
    const n = this.store.waitingIds().length;
    const text = String(n);
    if (this.countBadge.textContent !== text) this.countBadge.textContent = text;
    this.countBadge.hidden = n === 0;
    this.toggle.classList.toggle("has-waiting", n > 0);
    this.toggle.title = n
      ? `${n} session${n === 1 ? "" : "s"} waiting for you: show only those`
      : "No session is waiting for you";
    const title = n ? `(${n}) ${this.title}` : this.title;
    if (document.title !== title) document.title = title;
  }

  showAllow() {
    this.allow.hidden = !("Notification" in window) || Notification.permission !== "default";
  }

  /**
   * Tells the user, through the browser, that a session waits, if the tab is in the
   * background and notifications are allowed.
   * @param {string} id
   * @param {Attention} a
   */
  notify(id, a) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (document.visibilityState !== "hidden") return;
    const notification = new Notification(`${id} needs you`, {
      body: `${a.reason || "waiting"}: ${describeRequest(a.request)}`.slice(0, 200),
      tag: `tailhub-${id}`,
    });
    notification.addEventListener("click", () => {
      window.focus();
      this.onOpen(id);
      notification.close();
    });
    notifications.push(notification);
    if (notifications.length > KEEP_NOTIFICATIONS) notifications.shift();
  }
}

/** A container pane's waiting request and its answers. */
export class NeedsPanel {
  /**
   * @param {string} id the container
   * @param {Commands} commands
   * @param {AttentionStore} [store]
   */
  constructor(id, commands, store = attention) {
    this.id = id;
    this.commands = commands;
    this.store = store;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.outcomeTimer = undefined;
    this.element = el("section", "needs");
    this.element.setAttribute("aria-label", `${id} needs you`);
    this.element.hidden = true;
    this.head = el("div", "needs-head");
    this.tool = el("span", "needs-tool");
    this.input = el("pre", "needs-input");
    this.question = el("p", "needs-question");
    this.options = el("div", "needs-options");
    this.options.setAttribute("role", "group");
    this.options.setAttribute("aria-label", "Answers offered");
    const actions = el("div", "needs-actions");
    this.approveButton = button("Approve", "btn btn-small btn-primary", `Approve for ${id}`);
    this.approveButton.addEventListener("click", () => this.answer("approve"));
    this.message = /** @type {HTMLInputElement} */ (el("input", "input needs-message"));
    this.message.type = "text";
    this.message.placeholder = "Reason (optional)";
    this.message.setAttribute("aria-label", `Reason to deny, for ${id}`);
    this.denyButton = button("Deny", "btn btn-small btn-danger", `Deny for ${id}`);
    this.denyButton.addEventListener("click", () => this.answer("deny"));
    this.decide = el("span", "needs-decide");
    this.decide.append(this.approveButton, this.message, this.denyButton);
    const form = /** @type {HTMLFormElement} */ (el("form", "needs-reply"));
    this.reply = /** @type {HTMLInputElement} */ (el("input", "input needs-reply-field"));
    this.reply.type = "text";
    this.reply.autocomplete = "off";
    this.reply.placeholder = "Reply to the agent, Enter sends";
    this.reply.setAttribute("aria-label", `Reply to ${id}`);
    this.replyButton = button("Send reply", "btn btn-small", `Send the reply to ${id}`);
    this.replyButton.type = "submit";
    form.append(this.reply, this.replyButton);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.reply.value.trim() && this.send("reply", { text: this.reply.value })) {
        this.reply.value = "";
      }
    });
    actions.append(this.decide, form);
    this.outcome = el("span", "needs-outcome");
    this.outcome.setAttribute("role", "status");
    this.element.append(this.head, this.tool, this.input, this.question, this.options, actions, this.outcome);

    /** @type {import("./attention.js").Listener} */
    this.onAttention = (about) => {
      if (about === this.id) this.render();
    };
    store.listeners.add(this.onAttention);
    /** @type {import("./commands.js").Listener} */
    this.onCommand = (about, outcome) => {
      if (about === null) this.setEnabled(this.commands.online);
      else if (about === this.id && outcome && ["approve", "deny", "reply"].includes(outcome.label)) {
        this.show(outcome.text, outcome.state);
      }
    };
    commands.listeners.add(this.onCommand);
    this.setEnabled(commands.online);
    this.render();
  }

  render() {
    const waiting = this.store.waiting(this.id);
    this.element.hidden = waiting === null;
    if (!waiting) {
      this.options.replaceChildren();
      return;
    }
    const request = waiting.request;
    const since = Number.isFinite(waiting.since) ? ` · since ${moment(waiting.since)}` : "";
    this.head.textContent = `Waiting for you: ${waiting.reason || request?.kind || "input"}${since}`;
    this.tool.textContent = request?.tool ?? "";
    this.tool.hidden = !request?.tool;
    const input = request?.input;
    this.input.hidden = input === null || input === undefined;
    this.input.textContent = this.input.hidden ? "" : cut(JSON.stringify(input, null, 2) ?? "");
    this.question.textContent = request?.question ?? "";
    this.question.hidden = !request?.question;
    this.options.replaceChildren(
      ...(request?.options ?? []).map((option) => {
        const choice = button(option, "btn btn-small needs-option", `Answer ${option}`);
        choice.addEventListener("click", () => this.send("reply", { text: option }));
        choice.disabled = !this.commands.online;
        return choice;
      }),
    );
    this.options.hidden = !request?.options?.length;
    // A question is answered in words; a permission or an approval is granted or refused.
    this.decide.hidden = request?.kind === "question";
  }

  /** @param {"approve" | "deny"} action */
  answer(action) {
    const request = this.store.waiting(this.id)?.request;
    /** @type {Record<string, unknown>} */
    const data = {};
    if (request?.id) data.requestId = request.id;
    if (action === "deny" && this.message.value.trim()) data.message = this.message.value.trim();
    if (this.send(action, data) && action === "deny") this.message.value = "";
  }

  /**
   * @param {"approve" | "deny" | "reply"} action
   * @param {Record<string, unknown>} data
   */
  send(action, data) {
    return this.commands.send(this.id, { action, ...data }, action);
  }

  /** @param {boolean} enabled */
  setEnabled(enabled) {
    for (const control of [this.approveButton, this.denyButton, this.message, this.reply, this.replyButton]) {
      control.disabled = !enabled;
    }
    for (const choice of this.options.querySelectorAll("button")) {
      /** @type {HTMLButtonElement} */ (choice).disabled = !enabled;
    }
  }

  /** @param {string} text @param {string} state */
  show(text, state) {
    clearTimeout(this.outcomeTimer);
    this.outcome.textContent = text;
    this.outcome.dataset.state = state;
    if (state !== "pending") {
      this.outcomeTimer = setTimeout(() => {
        this.outcome.textContent = "";
        delete this.outcome.dataset.state;
      }, OUTCOME_MS);
    }
  }

  destroy() {
    clearTimeout(this.outcomeTimer);
    this.store.listeners.delete(this.onAttention);
    this.commands.listeners.delete(this.onCommand);
    this.element.remove();
  }
}

/** @param {string} text */
function cut(text) {
  let out = text.length > INPUT_CHARS ? `${text.slice(0, INPUT_CHARS)}…` : text;
  const lines = out.split("\n");
  if (lines.length > INPUT_LINES) {
    out = `${lines.slice(0, INPUT_LINES).join("\n")}\n… ${lines.length - INPUT_LINES} more lines`;
  }
  return out;
}
