/**
 * The steering row of a container's log pane: a one-line input for the container's stdin
 * (Enter sends the line with its newline, as a terminal would; *EOF* closes the input) and
 * *Cancel*, which asks for confirmation inline before it sends anything.
 *
 * It is offered only while the token may send commands (not a viewer's), the container's
 * session is active and the hub has a connection publishing for it (the only one a command
 * can reach), and disabled while the page is not connected to the hub. The outcome of each command is shown next to it for a few seconds.
 * @module steer
 */

/** @typedef {import("./commands.js").Commands} Commands */
/** @typedef {import("./commands.js").Outcome} Outcome */
/** @typedef {import("./sessions.js").Session} Session */

/** How long an outcome stays shown (ms): a success briefly, a refusal a little longer. */
const SHOW_SENT_MS = 5000;
const SHOW_FAILED_MS = 12_000;
/** An unanswered confirmation question goes away after this long (ms). */
const CONFIRM_MS = 15_000;

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

/** @param {string} text @param {string} [className] @param {string} [label] */
function button(text, className = "btn btn-small", label) {
  const node = /** @type {HTMLButtonElement} */ (el("button", className, text));
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  return node;
}

export class SteerBar {
  /**
   * @param {string} id the container
   * @param {Commands} commands
   */
  constructor(id, commands) {
    this.id = id;
    this.commands = commands;
    this.available = false;
    /** @type {Session | undefined} the session as last shown */
    this.session = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.outcomeTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.confirmTimer = undefined;

    this.element = el("div", "pane-steer");
    this.element.setAttribute("role", "group");
    this.element.setAttribute("aria-label", `Steer ${id}`);
    this.controls = el("div", "steer-controls");
    this.controls.hidden = true;
    this.controls.append(this.buildInput(), ...this.buildCancel());
    this.outcome = el("span", "steer-outcome");
    this.outcome.setAttribute("role", "status");
    this.element.append(this.controls, this.outcome);
    this.element.hidden = true;

    /** @type {import("./commands.js").Listener} */
    this.listener = (about, outcome) => {
      if (about === null) {
        this.setEnabled(this.commands.online);
        this.update(this.session);
      }
      else if (about === this.id && outcome) this.show(outcome);
    };
    commands.listeners.add(this.listener);
    this.setEnabled(commands.online);
  }

  /** The one-line input: Enter or *Send* sends the line and its newline; *EOF* closes. */
  buildInput() {
    const id = this.id;
    const form = /** @type {HTMLFormElement} */ (el("form", "steer-input"));
    this.field = /** @type {HTMLInputElement} */ (el("input", "input steer-field"));
    this.field.type = "text";
    this.field.autocomplete = "off";
    this.field.spellcheck = false;
    this.field.placeholder = "Input, Enter sends";
    this.field.setAttribute("aria-label", `Input for ${id}`);
    this.sendButton = button("Send", "btn btn-small", `Send the line to ${id}`);
    this.sendButton.type = "submit";
    this.eofButton = button("EOF", "btn btn-small", `Send end of input (EOF) to ${id}`);
    this.eofButton.title = "Close the command's input (end of file)";
    form.append(this.field, this.sendButton, this.eofButton);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.commands.input(this.id, `${this.field.value}\n`)) this.field.value = "";
    });
    this.eofButton.addEventListener("click", () => this.commands.endOfInput(this.id));
    return form;
  }

  /** *Cancel* and the inline question that confirms it. */
  buildCancel() {
    const id = this.id;
    this.cancelButton = button("Cancel", "btn btn-small btn-danger", `Cancel ${id}`);
    this.cancelButton.title = "Ask the container to stop";
    this.cancelButton.addEventListener("click", () => this.askToConfirm());
    this.confirm = el("div", "steer-confirm");
    this.confirm.setAttribute("role", "group");
    this.confirm.setAttribute("aria-label", `Confirm cancelling ${id}`);
    this.confirm.hidden = true;
    const question = el("span", "steer-question", `Cancel ${id}?`);
    this.yesButton = button("Yes, cancel", "btn btn-small btn-danger", `Yes, cancel ${id}`);
    this.noButton = button("Keep running", "btn btn-small");
    this.yesButton.addEventListener("click", () => {
      this.closeConfirm(false);
      this.commands.cancel(this.id);
      this.cancelButton.focus();
    });
    this.noButton.addEventListener("click", () => this.closeConfirm(true));
    this.confirm.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        this.closeConfirm(true);
      }
    });
    this.confirm.append(question, this.yesButton, this.noButton);
    return [this.cancelButton, this.confirm];
  }

  /**
   * Offers the controls only while a command can reach the container.
   * @param {Session | undefined} session
   */
  update(session) {
    this.session = session;
    const available = this.commands.allowed && Boolean(session?.active && session.publishers > 0);
    if (available === this.available) return;
    this.available = available;
    this.controls.hidden = !available;
    if (!available) this.closeConfirm(false);
    this.element.hidden = !available && !this.outcome.textContent;
  }

  /** @param {boolean} enabled */
  setEnabled(enabled) {
    for (const control of [this.field, this.sendButton, this.eofButton, this.cancelButton]) {
      control.disabled = !enabled;
    }
    this.yesButton.disabled = !enabled;
    this.controls.title = enabled ? "" : "Not connected to the hub";
  }

  askToConfirm() {
    this.cancelButton.hidden = true;
    this.confirm.hidden = false;
    // The safe answer has the focus: a second Enter does not cancel by accident.
    this.noButton.focus();
    clearTimeout(this.confirmTimer);
    this.confirmTimer = setTimeout(() => this.closeConfirm(true), CONFIRM_MS);
  }

  /** @param {boolean} refocus put the focus back on *Cancel* when it was in the question */
  closeConfirm(refocus) {
    clearTimeout(this.confirmTimer);
    if (this.confirm.hidden) return;
    const hadFocus = this.confirm.contains(document.activeElement);
    this.confirm.hidden = true;
    this.cancelButton.hidden = false;
    if (refocus && hadFocus) this.cancelButton.focus();
  }

  /** @param {Outcome} outcome */
  show(outcome) {
    clearTimeout(this.outcomeTimer);
    this.outcome.textContent = outcome.text;
    this.outcome.title = outcome.text;
    this.outcome.dataset.state = outcome.state;
    this.element.hidden = false;
    if (outcome.state !== "pending") {
      const ms = outcome.state === "sent" ? SHOW_SENT_MS : SHOW_FAILED_MS;
      this.outcomeTimer = setTimeout(() => {
        this.outcome.textContent = "";
        this.outcome.title = "";
        delete this.outcome.dataset.state;
        this.element.hidden = !this.available;
      }, ms);
    }
  }

  destroy() {
    clearTimeout(this.outcomeTimer);
    clearTimeout(this.confirmTimer);
    this.commands.listeners.delete(this.listener);
    this.element.remove();
  }
}
