/**
 * The log area: one pane per chosen container side by side, or one pane merging them all.
 * Panes whose containers stay in view are kept (with their scroll position) when the
 * choice changes.
 * @module workspace
 */

import { LogPane } from "./log-pane.js";

/** @typedef {import("./container-log.js").LogStore} LogStore */
/** @typedef {import("./filter.js").Filter} Filter */
/** @typedef {import("./sessions.js").SessionStore} SessionStore */
/** @typedef {import("./commands.js").Commands} Commands */

export class Workspace {
  /**
   * @param {object} options
   * @param {HTMLElement} options.root where panes go
   * @param {HTMLElement} options.placeholder shown when no container is chosen
   * @param {LogStore} options.logs
   * @param {Filter} options.filter
   * @param {SessionStore} options.sessions
   * @param {Commands} options.commands
   * @param {number} options.lineHeight
   * @param {(id: string) => void} options.onClose
   * @param {(id: string) => void} options.onEarlier
   */
  constructor({
    root,
    placeholder,
    logs,
    filter,
    sessions,
    commands,
    lineHeight,
    onClose,
    onEarlier,
  }) {
    this.root = root;
    this.placeholder = placeholder;
    this.logs = logs;
    this.filter = filter;
    this.sessions = sessions;
    this.commands = commands;
    this.lineHeight = lineHeight;
    this.onClose = onClose;
    this.onEarlier = onEarlier;
    /** @type {Map<string, LogPane>} by the pane's containers */
    this.panes = new Map();
    this.frame = 0;
  }

  /**
   * Shows `ids`, merged in one pane or side by side.
   * @param {string[]} ids
   * @param {"merged" | "split"} layout
   */
  show(ids, layout) {
    const groups = layout === "merged" && ids.length > 1 ? [ids] : ids.map((id) => [id]);
    /** @type {Map<string, LogPane>} */
    const next = new Map();
    for (const group of groups) {
      const key = group.join("\n");
      let pane = this.panes.get(key);
      if (!pane) {
        pane = new LogPane({
          logs: group.map((id) => this.logs.open(id)),
          filter: this.filter,
          sessions: this.sessions,
          commands: this.commands,
          lineHeight: this.lineHeight,
          onClose: this.onClose,
          onEarlier: this.onEarlier,
        });
      }
      next.set(key, pane);
    }
    for (const [key, pane] of this.panes) if (!next.has(key)) pane.destroy();
    this.panes = next;
    const elements = [...next.values()].map((pane) => pane.element);
    elements.forEach((element, i) => {
      if (this.root.children[i] !== element) this.root.insertBefore(element, this.root.children[i] ?? null);
    });
    this.root.style.setProperty("--panes", String(Math.max(1, elements.length)));
    this.placeholder.hidden = ids.length > 0;
    this.updateStatus();
  }

  updateStatus() {
    for (const pane of this.panes.values()) pane.updateStatus();
  }

  /** Updates the pane headers at the next frame, once however often it is asked. */
  scheduleStatus() {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.updateStatus();
      });
    }
  }
}
