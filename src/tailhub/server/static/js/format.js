/**
 * How times, durations and counts read on the dashboard. Pure functions, no DOM.
 * @module format
 */

const numberFormat = new Intl.NumberFormat();

/** @param {number} n */
export function count(n) {
  return numberFormat.format(n);
}

/** @param {number} n */
function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

/**
 * A log line's time of day, local, with milliseconds: `14:03:07.125`.
 * @param {number} ms Unix milliseconds
 */
export function clock(ms) {
  if (!Number.isFinite(ms)) return "--:--:--.---";
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/**
 * A log line's time: `14:03:07.125` today, `2026-01-30 14:03:07.125` before today.
 * @param {number} ms Unix milliseconds
 * @param {number} [now]
 */
export function logTime(ms, now = Date.now()) {
  if (!Number.isFinite(ms) || ms >= startOfDay(now)) return clock(ms);
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(ms)}`;
}

/**
 * Midnight, local time, at the start of the day of `ms`.
 * @param {number} ms
 */
export function startOfDay(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/**
 * A moment for people: the time today, else the date and time.
 * @param {number} ms
 * @param {number} [now]
 */
export function moment(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return "–";
  const d = new Date(ms);
  const today = new Date(now);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/**
 * A duration in the largest two units that matter: `850 ms`, `12.4 s`, `5m 02s`, `3h 07m`,
 * `2d 4h`.
 * @param {number} ms
 */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor(s / 3600) % 24}h`;
}

/**
 * How long ago, coarse: `now`, `12s ago`, `4m ago`, `2h ago`, `3d ago`.
 * @param {number} ms
 * @param {number} [now]
 */
export function ago(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return "–";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 2) return "now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/**
 * Parses an RFC 3339 time; NaN when it is missing or not a time.
 * @param {unknown} value
 */
export function parseTime(value) {
  return typeof value === "string" ? Date.parse(value) : Number.NaN;
}

/**
 * A stable hue (0–359) for a container ID, so a container keeps its colour in merged views.
 * @param {string} id
 */
export function hueOf(id) {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % 360;
}
