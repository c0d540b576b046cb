/**
 * Saving a log view to a file, in the browser, without a round trip to the hub.
 * @module download
 */

import { stripAnsi } from "./ansi.js";

/** @typedef {import("./entry.js").Entry} Entry */

/**
 * One protocol message per line, exactly as the hub sent it.
 * @param {Entry[]} entries
 */
export function toNdjson(entries) {
  return entries.map((entry) => `${JSON.stringify(entry.raw)}\n`).join("");
}

/**
 * Readable text: time, container, level, message (escape sequences removed), metadata.
 * @param {Entry[]} entries
 */
export function toText(entries) {
  return entries
    .map((entry) => {
      const time = new Date(entry.t).toISOString();
      const meta = entry.meta === undefined ? "" : ` ${JSON.stringify(entry.meta)}`;
      return `${time} ${entry.cid} ${entry.level.toUpperCase().padEnd(5)} ${stripAnsi(entry.text)}${meta}\n`;
    })
    .join("");
}

/**
 * Hands `text` to the browser as a file download.
 * @param {string} filename
 * @param {string} text
 * @param {string} type MIME type
 */
export function saveFile(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
