/**
 * A log view of one container, or of several merged by time: a header (who, status, counts,
 * download; for one container, the steering row), the virtual list of lines, and a "jump to
 * live" button while scrolled up.
 *
 * The pane listens to its containers' logs, collects what arrives and folds it in once per
 * animation frame: appended when it comes after the last line (the usual case), merged in
 * order otherwise (a backlog arriving after live lines of another container).
 * @module log-pane
 */

import { VirtualList } from "./virtual-list.js";
import { renderRow, toggleMeta } from "./row.js";
import { bySeq, byTime, heightOf } from "./entry.js";
import { count, duration, hueOf, startOfDay } from "./format.js";
import { saveFile, toNdjson, toText } from "./download.js";
import { SteerBar } from "./steer.js";

/** @typedef {import("./entry.js").Entry} Entry */
/** @typedef {import("./container-log.js").ContainerLog} ContainerLog */
/** @typedef {import("./filter.js").Filter} Filter */
/** @typedef {import("./sessions.js").SessionStore} SessionStore */
/** @typedef {import("./commands.js").Commands} Commands */

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

/**
 * Merges two arrays sorted by `compare` into a new sorted array.
 * @template T
 * @param {T[]} a
 * @param {T[]} b
 * @param {(x: T, y: T) => number} compare
 */
function mergeSorted(a, b, compare) {
  const out = new Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = compare(a[i], b[j]) <= 0 ? a[i++] : b[j++];
  while (i < a.length) out[k++] = a[i++];
  while (j < b.length) out[k++] = b[j++];
  return out;
}

export class LogPane {
  /**
   * @param {object} options
   * @param {ContainerLog[]} options.logs the containers shown, merged when more than one
   * @param {Filter} options.filter
   * @param {SessionStore} options.sessions
   * @param {Commands} options.commands steers a container shown alone
   * @param {number} options.lineHeight pixels per text line (from the CSS)
   * @param {(id: string) => void} options.onClose the user closed a container's pane
   * @param {(id: string) => void} options.onEarlier the user asked for older lines
   */
  constructor({ logs, filter, sessions, commands, lineHeight, onClose, onEarlier }) {
    this.logs = logs;
    this.filter = filter;
    this.sessions = sessions;
    this.merged = logs.length > 1;
    this.compare = this.merged ? byTime : bySeq;
    /** @type {Entry[]} every entry of the pane's containers, in pane order */
    this.all = [];
    /** @type {Entry[]} arrived since the last frame */
    this.pending = [];
    this.dirty = true;
    this.frame = 0;

    this.element = el("section", "pane");
    const title = this.merged ? `${logs.length} containers, merged` : logs[0].id;
    this.element.setAttribute("aria-label", `Log: ${title}`);
    const header = this.buildHeader(title, onClose, onEarlier);
    /** Cancel and input, for a container shown alone (a merged pane has no one to steer). */
    this.steer = this.merged ? null : new SteerBar(logs[0].id, commands);
    if (this.steer) header.appendChild(this.steer.element);
    this.element.appendChild(header);

    this.viewport = el("div", "viewport");
    this.viewport.tabIndex = 0;
    this.viewport.setAttribute("role", "log");
    this.viewport.setAttribute("aria-label", `Lines of ${title}`);
    this.viewport.setAttribute("aria-live", "off");
    if (this.merged) this.viewport.classList.add("with-cid");
    this.element.appendChild(this.viewport);

    this.empty = el("p", "pane-empty", "Waiting for messages…");
    this.element.appendChild(this.empty);

    this.jump = /** @type {HTMLButtonElement} */ (el("button", "jump-live", "Jump to live"));
    this.jump.type = "button";
    this.jump.hidden = true;
    this.jump.addEventListener("click", () => {
      this.list.follow();
      this.viewport.focus({ preventScroll: true });
    });
    this.element.appendChild(this.jump);

    /** @type {import("./row.js").RowContext} */
    const context = {
      showContainer: this.merged,
      marks: (text) => this.filter.marks(text),
      toggle: (entry) => this.toggle(entry),
    };
    /** @type {VirtualList<Entry>} */
    this.list = new VirtualList(this.viewport, {
      lineHeight,
      renderRow: (entry) => renderRow(entry, context),
      heightOf: (entry) => heightOf(entry, this.filter.wrap ? this.cols : 0),
      compare: this.compare,
      onFollow: (following, unseen) => {
        this.jump.hidden = following;
        this.jump.textContent = unseen ? `Jump to live (${count(unseen)} new)` : "Jump to live";
      },
    });

    this.listener = {
      /** @param {ContainerLog} _log @param {Entry} entry */
      added: (_log, entry) => {
        this.pending.push(entry);
        this.schedule();
      },
      trimmed: () => {
        this.dirty = true;
        this.schedule();
      },
    };
    for (const log of logs) log.listeners.add(this.listener);
    this.onFilter = (/** @type {"rows" | "marks"} */ what) => {
      if (what === "rows") this.dirty = true;
      else this.list.refresh();
      this.schedule();
    };
    filter.listeners.add(this.onFilter);
    /** Columns of the message cell when lines wrap. */
    this.cols = 0;
    this.resizeObserver = new ResizeObserver(() => {
      if (this.filter.wrap && this.wrapColumns() !== this.cols) {
        this.dirty = true;
        this.schedule();
      }
    });
    this.resizeObserver.observe(this.viewport);
    this.schedule();
  }

  /**
   * How many characters fit on one line of the message cell, from the viewport's width and
   * the widths of the columns before it (see `.wrap .row` in the CSS).
   */
  wrapColumns() {
    const probe = el("span", "probe", "0".repeat(100));
    this.viewport.appendChild(probe);
    const ch = probe.getBoundingClientRect().width / 100 || 8;
    probe.remove();
    const style = getComputedStyle(this.viewport);
    const lead = Number.parseFloat(style.getPropertyValue("--lead-ch")) || 20;
    const width = this.viewport.clientWidth - 24;
    return Math.max(20, Math.floor(width / ch - lead));
  }

  /**
   * @param {string} title
   * @param {(id: string) => void} onClose
   * @param {(id: string) => void} onEarlier
   */
  buildHeader(title, onClose, onEarlier) {
    const header = el("header", "pane-head");
    const who = el("div", "pane-who");
    for (const log of this.logs) {
      const chip = el("span", "pane-chip");
      chip.style.setProperty("--hue", String(hueOf(log.id)));
      const name = el("span", "pane-name", log.id);
      const badge = el("span", "badge");
      badge.dataset.cid = log.id;
      chip.append(name, badge);
      who.appendChild(chip);
    }
    header.appendChild(who);
    this.info = el("span", "pane-info");
    this.info.setAttribute("aria-live", "off");
    header.appendChild(this.info);

    const actions = el("div", "pane-actions");
    this.earlier = /** @type {HTMLButtonElement} */ (el("button", "btn btn-small", "Earlier…"));
    this.earlier.type = "button";
    this.earlier.hidden = true;
    this.earlier.addEventListener("click", () => {
      for (const log of this.logs) if (log.earlierAvailable) onEarlier(log.id);
    });
    actions.appendChild(this.earlier);
    const menu = /** @type {HTMLDetailsElement} */ (el("details", "menu"));
    const summary = el("summary", "btn", "Download");
    summary.title = "Download the lines shown";
    menu.appendChild(summary);
    const list = el("div", "menu-list");
    const safe = title.replace(/[^\w.-]+/g, "_");
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const ndjson = el("button", "btn", "NDJSON (as received)");
    ndjson.addEventListener("click", () => {
      menu.open = false;
      saveFile(`tailhub-${safe}-${stamp}.ndjson`, toNdjson(this.list.items), "application/x-ndjson");
    });
    const text = el("button", "btn", "Plain text");
    text.addEventListener("click", () => {
      menu.open = false;
      saveFile(`tailhub-${safe}-${stamp}.log`, toText(this.list.items), "text/plain");
    });
    list.append(ndjson, text);
    menu.appendChild(list);
    actions.appendChild(menu);
    const close = el("button", "btn btn-icon", "✕");
    close.setAttribute("aria-label", `Close ${title}`);
    close.title = "Close";
    close.addEventListener("click", () => {
      for (const log of this.logs) onClose(log.id);
    });
    actions.appendChild(close);
    header.appendChild(actions);
    return header;
  }

  schedule() {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.flush();
      });
    }
  }

  /** Folds what arrived into the view. */
  flush() {
    const { compare, filter } = this;
    if (!this.dirty && this.pending.length && this.showDates(this.pending)) this.dirty = true;
    if (this.dirty) {
      this.dirty = false;
      this.pending = [];
      const all = this.merged ? this.logs.flatMap((log) => log.entries) : this.logs[0].entries.slice();
      if (this.merged) all.sort(compare);
      this.all = all;
      this.viewport.classList.toggle("wrap", filter.wrap);
      this.viewport.classList.remove("with-date");
      this.showDates(all);
      if (filter.wrap) this.cols = this.wrapColumns();
      this.list.setItems(all.filter((entry) => filter.matches(entry)));
    } else if (this.pending.length) {
      let batch = this.pending.filter((entry) => !entry.dropped);
      this.pending = [];
      if (batch.some((entry, i) => i > 0 && compare(batch[i - 1], entry) > 0)) {
        batch = batch.sort(compare);
      }
      const last = this.all[this.all.length - 1];
      if (batch.length && (!last || compare(last, batch[0]) < 0)) {
        for (const entry of batch) this.all.push(entry);
        this.list.append(batch.filter((entry) => filter.matches(entry)));
      } else if (batch.length) {
        this.all = mergeSorted(this.all, batch, compare);
        this.list.setItems(this.all.filter((entry) => filter.matches(entry)));
      }
    }
    this.updateInfo();
  }

  /**
   * Widens the time column once a line from before today is among `entries` (its time shows
   * the date); returns whether that changed.
   * @param {Entry[]} entries
   */
  showDates(entries) {
    if (this.viewport.classList.contains("with-date")) return false;
    const today = startOfDay(Date.now());
    if (!entries.some((entry) => entry.t < today)) return false;
    this.viewport.classList.add("with-date");
    return true;
  }

  updateInfo() {
    this.updateStatus();
    const total = this.all.length;
    const shown = this.list.items.length;
    this.info.textContent =
      shown === total ? `${count(total)} lines` : `${count(shown)} of ${count(total)} lines`;
    this.empty.hidden = shown > 0;
    this.empty.textContent = total ? "No line matches the filter." : "Waiting for messages…";
  }

  /** Shows the sessions' status, exit code and duration in the header. */
  updateStatus() {
    const earlier = this.logs.reduce((sum, log) => sum + log.earlierAvailable, 0);
    this.earlier.hidden = earlier === 0;
    const label = `Load earlier lines (${count(earlier)} more kept by the hub)`;
    if (this.earlier.title !== label) {
      this.earlier.title = label;
      this.earlier.setAttribute("aria-label", label);
    }
    for (const badge of this.element.querySelectorAll(".pane-head .badge")) {
      const id = /** @type {HTMLElement} */ (badge).dataset.cid ?? "";
      const session = this.sessions.get(id);
      const status = session?.status ?? "unknown";
      badge.className = `badge st-${status}`;
      let text = status;
      if (session && session.exitCode !== null && status !== "cancelled") {
        text += ` · exit ${session.exitCode}`;
      }
      if (session && !session.active && Number.isFinite(session.endedAt)) {
        text += ` · ${duration(session.endedAt - session.startedAt)}`;
      }
      if (badge.textContent !== text) badge.textContent = text;
    }
    this.steer?.update(this.sessions.get(this.logs[0].id));
  }

  /** @param {Entry} entry */
  toggle(entry) {
    toggleMeta(entry);
    const index = this.list.lowerBound(entry);
    if (this.list.items[index] !== entry) return;
    this.list.resized(index);
    requestAnimationFrame(() => {
      const button = this.viewport.querySelector(`.row[data-n="${entry.n}"] .meta-toggle`);
      /** @type {HTMLElement | null} */ (button)?.focus({ preventScroll: true });
    });
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    for (const log of this.logs) log.listeners.delete(this.listener);
    this.filter.listeners.delete(this.onFilter);
    this.steer?.destroy();
    this.resizeObserver.disconnect();
    this.list.destroy();
    this.element.remove();
  }
}
