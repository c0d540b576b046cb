/**
 * One routed hub message (`log`, `status`, `complete`, `error` with a `seq`) as a log line.
 *
 * An entry keeps the message exactly as received (for download) next to what the views need:
 * a level for filtering, the text to show, how many lines it takes, and the JSON to expand.
 * @module entry
 */

import { parseTime, duration } from "./format.js";
import { stripAnsi } from "./ansi.js";

/** The levels a viewer can filter on, least severe first. */
export const LEVELS = /** @type {const} */ (["debug", "info", "warn", "error"]);

/**
 * The choices of the level filter: the levels, and `stderr` for the lines a command wrote to
 * its standard error (`tailhub run` marks them `"stream": "stderr"`), whatever their level.
 */
export const FILTER_LEVELS = /** @type {const} */ ([...LEVELS, "stderr"]);

const LEVEL_ALIASES = new Map([
  ["trace", "debug"],
  ["warning", "warn"],
  ["fatal", "error"],
  ["critical", "error"],
  ["err", "error"],
]);

/**
 * @typedef {object} Entry
 * @property {number} n arrival number, increasing across all containers
 * @property {string} cid containerID
 * @property {number} seq the hub's per-container sequence number
 * @property {string} type `log`, `status`, `complete` or `error`
 * @property {number} t time in Unix ms (the message's timestamp, else arrival)
 * @property {string} level one of LEVELS
 * @property {string} stream `stderr` for a command's standard error, else ""
 * @property {boolean} cancelled a cancelled run's status or end
 * @property {boolean} runStart the first entry of a new run of its container, after another
 * @property {number} wrapCols columns `wrapLines` was counted for (0: not counted)
 * @property {number} wrapLines text lines `text` takes wrapped at `wrapCols` columns
 * @property {string} text the message to show; may hold ANSI escape sequences
 * @property {number} lines how many text lines `text` takes
 * @property {unknown} meta JSON to show expanded (log metadata, error details, a message that
 *   is a JSON object), or undefined
 * @property {boolean} fields whether `meta` is the message itself (its text is a JSON object)
 * @property {boolean} open whether `meta` is shown
 * @property {number} metaLines lines of pretty-printed `meta` (0 until first opened)
 * @property {string | null} haystack lower-case visible text for search (computed on use)
 * @property {object} raw the message as received
 * @property {boolean} [dropped] set once the container's log no longer holds it
 */

let arrivals = 0;

/** @param {unknown} value @returns {value is Record<string, unknown>} */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** @param {unknown} value */
function asText(value) {
  if (typeof value === "string") return value;
  if (value === undefined || value === null) return "";
  return JSON.stringify(value);
}

/** @param {unknown} level */
export function normaliseLevel(level) {
  const name = String(level ?? "info").toLowerCase();
  if (LEVELS.includes(/** @type {any} */ (name))) return name;
  return LEVEL_ALIASES.get(name) ?? "info";
}

/**
 * Tidies text for a fixed-height line layout: CRLF becomes LF, a progress line redrawn with
 * CR keeps its last state, and one trailing newline is dropped.
 * @param {string} text
 */
function tidy(text) {
  let out = text.includes("\r") ? text.replace(/\r\n/g, "\n") : text;
  if (out.includes("\r")) {
    out = out
      .split("\n")
      .map((line) => line.slice(line.lastIndexOf("\r", line.length - 2) + 1).replace(/\r$/, ""))
      .join("\n");
  }
  return out.endsWith("\n") ? out.slice(0, -1) : out;
}

/** @param {string} text */
function lineCount(text) {
  let lines = 1;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) lines++;
  return lines;
}

/**
 * The fields of `data` beyond `known`, or undefined when there are none.
 * @param {Record<string, unknown>} data
 * @param {string[]} known
 */
function extra(data, known) {
  const rest = Object.fromEntries(Object.entries(data).filter(([key]) => !known.includes(key)));
  return Object.keys(rest).length ? rest : undefined;
}

/**
 * Builds the entry for a routed message.
 *
 * @param {Record<string, any>} msg a message with `containerID` and a numeric `seq`
 * @returns {Entry}
 */
export function toEntry(msg) {
  const data = isObject(msg.data) ? msg.data : {};
  let level = "info";
  let text = "";
  /** @type {unknown} */
  let meta;
  let fields = false;
  switch (msg.type) {
    case "log": {
      level = normaliseLevel(data.level);
      text = asText(data.message);
      const object = jsonObject(text);
      fields = object !== undefined;
      if (object === undefined) meta = data.metadata ?? undefined;
      else meta = data.metadata === undefined ? object : { message: object, metadata: data.metadata };
      break;
    }
    case "status": {
      const status = String(data.status ?? "unknown");
      level = status === "error" || status === "failed" ? "error" : status === "cancelled" ? "warn" : "info";
      text = `status → ${status}${data.message ? `: ${asText(data.message)}` : ""}`;
      meta = extra(data, ["status", "message"]);
      break;
    }
    case "complete": {
      const code = data.exitCode;
      const took = typeof data.duration === "number" ? ` after ${duration(data.duration)}` : "";
      if (data.cancelled === true) {
        level = "warn";
        text = `cancelled${took} (exit code ${asText(code)})`;
        meta = extra(data, ["exitCode", "duration", "message", "cancelled"]);
        break;
      }
      level = code === 0 ? "info" : "error";
      text = `completed with exit code ${asText(code)}${took}${data.message ? `: ${asText(data.message)}` : ""}`;
      meta = extra(data, ["exitCode", "duration", "message"]);
      break;
    }
    case "error":
      level = "error";
      text = `${data.code ? `[${asText(data.code)}] ` : ""}${asText(data.error) || "error"}`;
      meta = data.details ?? extra(data, ["error", "code", "details"]);
      break;
    default:
      text = asText(msg.data);
  }
  text = tidy(text);
  const t = parseTime(msg.timestamp);
  return {
    n: ++arrivals,
    cid: String(msg.containerID),
    seq: msg.seq,
    type: String(msg.type),
    t: Number.isFinite(t) ? t : Date.now(),
    level,
    stream: msg.type === "log" && data.stream === "stderr" ? "stderr" : "",
    cancelled:
      (msg.type === "status" && data.status === "cancelled") ||
      (msg.type === "complete" && data.cancelled === true),
    runStart: false,
    wrapCols: 0,
    wrapLines: 0,
    text,
    lines: lineCount(text),
    meta,
    fields,
    open: false,
    metaLines: 0,
    haystack: null,
    raw: msg,
  };
}

/**
 * The lower-case text search looks in: the visible message and the expandable JSON.
 * @param {Entry} entry
 */
export function haystackOf(entry) {
  if (entry.haystack === null) {
    const meta = entry.meta === undefined ? "" : `\n${JSON.stringify(entry.meta)}`;
    entry.haystack = (stripAnsi(entry.text) + meta).toLowerCase();
  }
  return entry.haystack;
}

/** Pretty-printed JSON of the entry's `meta`. @param {Entry} entry */
export function metaText(entry) {
  return JSON.stringify(entry.meta, null, 2) ?? "";
}

/**
 * How many text lines an entry takes in the log view: its run marker, its text (wrapped at
 * `cols` columns when given), and its expanded JSON.
 * @param {Entry} entry
 * @param {number} [cols] columns of the message cell when lines wrap; 0 or none: no wrapping
 */
export function heightOf(entry, cols = 0) {
  let text = entry.lines;
  if (cols > 0) {
    if (entry.wrapCols !== cols) {
      entry.wrapCols = cols;
      // The "+ json" button takes about eight columns at the start of the first line.
      const lead = entry.meta === undefined ? "" : " ".repeat(8);
      entry.wrapLines = wrappedLines(lead + stripAnsi(entry.text), cols);
    }
    text = entry.wrapLines;
  }
  return (entry.runStart ? 1 : 0) + text + (entry.open ? entry.metaLines : 0);
}

/**
 * Text lines `text` takes when wrapped at `cols` columns (one column per character).
 * @param {string} text
 * @param {number} cols
 */
export function wrappedLines(text, cols) {
  let lines = 0;
  for (const line of text.split("\n")) lines += Math.max(1, Math.ceil(line.length / cols));
  return lines;
}

/**
 * Whether `entry` begins a new run of its container, given the entry before it (by seq): it
 * follows the container's `complete`, or it is a `starting` status after other messages.
 * @param {Entry | undefined} previous
 * @param {Entry} entry
 */
export function startsRun(previous, entry) {
  if (!previous) return false;
  if (previous.type === "complete") return true;
  const data = /** @type {Record<string, any>} */ (entry.raw).data;
  return entry.type === "status" && data?.status === "starting";
}

/**
 * The level filter's name for an entry: `stderr` for standard error lines, else its level.
 * @param {Entry} entry
 */
export function filterLevel(entry) {
  return entry.stream || entry.level;
}

const OPENS_OBJECT = /^\s*\{/;
const CLOSES_OBJECT = /\}\s*$/;

/**
 * The object a message's text holds when the whole text is a JSON object, else undefined.
 * @param {string} text
 */
function jsonObject(text) {
  if (!OPENS_OBJECT.test(text) || !CLOSES_OBJECT.test(text)) return undefined;
  try {
    const value = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Orders entries of one container: by `seq`.
 * @param {Entry} a
 * @param {Entry} b
 */
export function bySeq(a, b) {
  return a.seq - b.seq;
}

/**
 * Orders entries of several containers: by time, then (same container) by `seq`, else by
 * arrival.
 * @param {Entry} a
 * @param {Entry} b
 */
export function byTime(a, b) {
  return a.t - b.t || (a.cid === b.cid ? a.seq - b.seq : a.n - b.n);
}
