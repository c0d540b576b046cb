/**
 * One log line as DOM: [container] time, level, message (ANSI colours, search marks) and,
 * when it has any, a button that expands its JSON (metadata, or a message that is a JSON
 * object) below the message. The first line of a new run of a container is preceded by a
 * marker line. A time before today shows its date.
 * @module row
 */

import { parseAnsi, renderSegments } from "./ansi.js";
import { renderJson } from "./json-view.js";
import { hueOf, logTime, moment } from "./format.js";

/** @typedef {import("./entry.js").Entry} Entry */

/**
 * @typedef {object} RowContext
 * @property {boolean} showContainer whether rows name their container (merged views)
 * @property {(text: string) => Array<[number, number]>} marks ranges to highlight
 * @property {(entry: Entry) => void} toggle expand or collapse the entry's metadata
 */

const LABELS = { status: "STATUS", complete: "EXIT", error: "ERROR" };

/**
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Builds a row. The element's height and position are set by the virtual list.
 * @param {Entry} entry
 * @param {RowContext} ctx
 */
export function renderRow(entry, ctx) {
  let classes = `row lv-${entry.level} t-${entry.type}`;
  if (entry.open) classes += " open";
  if (entry.stream) classes += ` s-${entry.stream}`;
  if (entry.cancelled) classes += " cancelled";
  if (entry.runStart) classes += " run-start";
  const row = el("div", classes);
  row.dataset.seq = String(entry.seq);
  row.dataset.cid = entry.cid;
  row.dataset.n = String(entry.n);
  if (entry.runStart) {
    const marker = el("div", "run-marker", `new run · ${moment(entry.t)}`);
    marker.setAttribute("role", "separator");
    row.appendChild(marker);
  }
  if (ctx.showContainer) {
    const cid = el("span", "cell-cid", entry.cid);
    cid.title = entry.cid;
    cid.style.setProperty("--hue", String(hueOf(entry.cid)));
    row.appendChild(cid);
  }
  const time = el("time", "cell-time", logTime(entry.t));
  const stamp = /** @type {Record<string, any>} */ (entry.raw).timestamp;
  if (typeof stamp === "string") {
    time.dateTime = stamp;
    time.title = `${stamp} · seq ${entry.seq}`;
  }
  row.appendChild(time);
  const label =
    entry.type !== "log" ? LABELS[entry.type] ?? "" : entry.stream ? entry.stream.toUpperCase() : entry.level.toUpperCase();
  // The cell keeps the row's font size, so its sticky offset in ch matches the columns.
  const level = el("span", "cell-level");
  level.appendChild(el("span", "level-text", label));
  row.appendChild(level);

  const message = el("span", "cell-msg");
  const segments = parseAnsi(entry.text);
  const visible = segments.length === 1 ? segments[0].text : segments.map((s) => s.text).join("");
  renderSegments(message, segments, ctx.marks(visible));
  if (entry.meta !== undefined) {
    const toggle = el("button", "meta-toggle", entry.open ? "− json" : "+ json");
    toggle.type = "button";
    toggle.setAttribute("aria-expanded", String(entry.open));
    const what = entry.fields ? "fields" : "metadata";
    toggle.setAttribute("aria-label", entry.open ? `Hide ${what}` : `Show ${what}`);
    toggle.addEventListener("click", () => ctx.toggle(entry));
    message.prepend(toggle);
  }
  row.appendChild(message);

  if (entry.open) {
    const pre = el("pre", "cell-meta");
    const { fragment, lines } = renderJson(entry.meta);
    entry.metaLines = lines;
    pre.appendChild(fragment);
    row.appendChild(pre);
  }
  return row;
}

/**
 * Opens or closes an entry's metadata (its height changes: the caller tells the list).
 * @param {Entry} entry
 */
export function toggleMeta(entry) {
  entry.open = !entry.open;
  if (entry.open && !entry.metaLines) entry.metaLines = renderJson(entry.meta).lines;
}
