/**
 * Pretty-printed JSON as DOM: keys, strings, numbers and literals in their own colours, laid
 * out like `JSON.stringify(value, null, 2)`. All text goes through Text nodes.
 * @module json-view
 */

/**
 * @param {DocumentFragment} out
 * @param {string} text
 * @param {string} [kind] token class: key, string, number, literal, punct
 */
function put(out, text, kind) {
  if (!kind) {
    out.appendChild(document.createTextNode(text));
    return;
  }
  const span = document.createElement("span");
  span.className = `json-${kind}`;
  span.textContent = text;
  out.appendChild(span);
}

/**
 * @param {DocumentFragment} out
 * @param {unknown} value
 * @param {string} indent
 * @returns {number} newlines written
 */
function write(out, value, indent) {
  if (value === null || typeof value === "boolean") {
    put(out, String(value), "literal");
    return 0;
  }
  if (typeof value === "number") {
    put(out, Number.isFinite(value) ? String(value) : "null", "number");
    return 0;
  }
  if (typeof value === "string") {
    put(out, JSON.stringify(value), "string");
    return 0;
  }
  if (typeof value !== "object") {
    put(out, "null", "literal");
    return 0;
  }
  const inner = `${indent}  `;
  const isArray = Array.isArray(value);
  const entries = isArray
    ? value.map((item, i) => [String(i), item])
    : Object.entries(/** @type {object} */ (value)).filter(([, v]) => v !== undefined);
  const [open, close] = isArray ? ["[", "]"] : ["{", "}"];
  if (!entries.length) {
    put(out, open + close, "punct");
    return 0;
  }
  let lines = 0;
  put(out, open, "punct");
  entries.forEach(([key, item], i) => {
    put(out, `\n${inner}`);
    lines++;
    if (!isArray) {
      put(out, JSON.stringify(key), "key");
      put(out, ": ", "punct");
    }
    lines += write(out, item, inner);
    if (i < entries.length - 1) put(out, ",", "punct");
  });
  put(out, `\n${indent}`);
  put(out, close, "punct");
  return lines + 1;
}

/**
 * Renders `value` as indented, coloured JSON.
 * @param {unknown} value any value that came from JSON.parse
 * @returns {{fragment: DocumentFragment, lines: number}}
 */
export function renderJson(value) {
  const fragment = document.createDocumentFragment();
  const lines = write(fragment, value, "") + 1;
  return { fragment, lines };
}
