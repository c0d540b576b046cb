/**
 * ANSI escape sequences in log text: parse them into styled segments, render segments as DOM.
 *
 * Only SGR ("Select Graphic Rendition": colours, bold, dim, italic, underline, inverse,
 * strike-through) changes how text looks. Every other escape sequence (cursor movement, OSC
 * titles and hyperlinks, charset switches) and every C0 control character other than tab and
 * newline is dropped. Text only ever reaches the page through Text nodes, so a log line can
 * never inject markup.
 *
 * @module ansi
 */

/**
 * A colour: 0–255 is an xterm palette index, a string is an `rgb(r, g, b)` value.
 * @typedef {number | string | null} Colour
 */

/**
 * @typedef {object} Style
 * @property {Colour} fg
 * @property {Colour} bg
 * @property {boolean} bold
 * @property {boolean} dim
 * @property {boolean} italic
 * @property {boolean} underline
 * @property {boolean} inverse
 * @property {boolean} strike
 */

/**
 * A run of text in one style; `style` is null for the default look.
 * @typedef {{text: string, style: Style | null}} Segment
 */

const ESC = 0x1b;
const PLAIN = /^[^\x00-\x08\x0b-\x1f\x7f]*$/;

/** @returns {Style} */
function defaultStyle() {
  return {
    fg: null,
    bg: null,
    bold: false,
    dim: false,
    italic: false,
    underline: false,
    inverse: false,
    strike: false,
  };
}

/** @param {Style} style */
function isDefault(style) {
  return (
    style.fg === null &&
    style.bg === null &&
    !style.bold &&
    !style.dim &&
    !style.italic &&
    !style.underline &&
    !style.inverse &&
    !style.strike
  );
}

/** @param {unknown} value */
function byte(value) {
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 && n <= 255 ? n : null;
}

/**
 * Reads an extended colour (`38;5;n`, `38;2;r;g;b`, or the colon forms `38:5:n`,
 * `38:2::r:g:b`) starting at `parts[i]`, the 38/48 itself.
 *
 * @param {string[]} parts the `;`-separated parameters
 * @param {number} i index of the 38 or 48
 * @returns {[Colour | undefined, number]} the colour (undefined when malformed) and how many
 *   parameters were used
 */
function extendedColour(parts, i) {
  const head = parts[i];
  if (head.includes(":")) {
    const sub = head.split(":");
    if (sub[1] === "5") return [byte(sub[2]), 1];
    if (sub[1] === "2") {
      // 38:2:r:g:b or 38:2:<colour space>:r:g:b
      const rgb = sub.length >= 6 ? sub.slice(3, 6) : sub.slice(2, 5);
      return [rgbColour(rgb), 1];
    }
    return [undefined, 1];
  }
  if (parts[i + 1] === "5") return [byte(parts[i + 2]), 3];
  if (parts[i + 1] === "2") return [rgbColour(parts.slice(i + 2, i + 5)), 5];
  return [undefined, 1];
}

/** @param {string[]} rgb */
function rgbColour(rgb) {
  const values = rgb.map(byte);
  if (values.length < 3 || values.includes(null)) return undefined;
  return `rgb(${values.join(", ")})`;
}

/**
 * Applies one SGR parameter string (what sits between `ESC [` and `m`) to a style.
 *
 * @param {Style} current
 * @param {string} params
 * @returns {Style} a new style; `current` is left unchanged
 */
export function applySgr(current, params) {
  const style = { ...current };
  const parts = params === "" ? ["0"] : params.split(";");
  for (let i = 0; i < parts.length; i++) {
    const code = Number.parseInt(parts[i], 10) || 0;
    if (code === 38 || code === 48) {
      const [colour, used] = extendedColour(parts, i);
      if (colour !== undefined && colour !== null) {
        if (code === 38) style.fg = colour;
        else style.bg = colour;
      }
      i += used - 1;
      continue;
    }
    if (code === 0) Object.assign(style, defaultStyle());
    else if (code === 1) style.bold = true;
    else if (code === 2) style.dim = true;
    else if (code === 3) style.italic = true;
    else if (code === 4) style.underline = true;
    else if (code === 7) style.inverse = true;
    else if (code === 9) style.strike = true;
    else if (code === 21 || code === 22) style.bold = style.dim = false;
    else if (code === 23) style.italic = false;
    else if (code === 24) style.underline = false;
    else if (code === 27) style.inverse = false;
    else if (code === 29) style.strike = false;
    else if (code >= 30 && code <= 37) style.fg = code - 30;
    else if (code === 39) style.fg = null;
    else if (code >= 40 && code <= 47) style.bg = code - 40;
    else if (code === 49) style.bg = null;
    else if (code >= 90 && code <= 97) style.fg = code - 90 + 8;
    else if (code >= 100 && code <= 107) style.bg = code - 100 + 8;
  }
  return style;
}

/**
 * Splits text with ANSI escape sequences into styled segments.
 *
 * @param {string} input
 * @returns {Segment[]} segments in order; their texts joined are the visible text
 */
export function parseAnsi(input) {
  if (PLAIN.test(input)) return input ? [{ text: input, style: null }] : [];
  /** @type {Segment[]} */
  const segments = [];
  let style = defaultStyle();
  let plain = true;
  let run = "";
  let start = 0;
  const n = input.length;
  const flush = (end) => {
    run += input.slice(start, end);
    if (run) segments.push({ text: run, style: plain ? null : style });
    run = "";
  };
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    if (c !== ESC) {
      if ((c < 0x20 && c !== 0x09 && c !== 0x0a) || c === 0x7f) {
        // A lone control character: keep the run, skip the character.
        run += input.slice(start, i);
        start = i + 1;
      }
      i++;
      continue;
    }
    const next = input[i + 1];
    let end;
    if (next === "[") {
      // CSI: parameter bytes 0x30-0x3F, intermediate bytes 0x20-0x2F, one final byte.
      let j = i + 2;
      while (j < n && input.charCodeAt(j) >= 0x30 && input.charCodeAt(j) <= 0x3f) j++;
      const params = input.slice(i + 2, j);
      const intermediates = j;
      while (j < n && input.charCodeAt(j) >= 0x20 && input.charCodeAt(j) <= 0x2f) j++;
      if (j < n && input[j] === "m" && j === intermediates && /^[\d;:]*$/.test(params)) {
        flush(i);
        style = applySgr(style, params);
        plain = isDefault(style);
        start = j + 1;
        i = j + 1;
        continue;
      }
      end = Math.min(j + 1, n);
    } else if (next === "]" || next === "P" || next === "_" || next === "^" || next === "X") {
      // OSC, DCS, APC, PM, SOS: a string ended by BEL or ST (ESC \).
      let j = i + 2;
      for (; j < n; j++) {
        if (input.charCodeAt(j) === 0x07) {
          j += 1;
          break;
        }
        if (input.charCodeAt(j) === ESC && input[j + 1] === "\\") {
          j += 2;
          break;
        }
      }
      end = Math.min(j, n);
    } else if (next === "(" || next === ")" || next === "*" || next === "+") {
      end = Math.min(i + 3, n); // charset designation: ESC ( B
    } else {
      end = Math.min(i + 2, n);
    }
    run += input.slice(start, i);
    start = end;
    i = end;
  }
  flush(n);
  return segments;
}

/**
 * The visible text of a string with escape sequences: what `parseAnsi` would show.
 * @param {string} input
 */
export function stripAnsi(input) {
  if (PLAIN.test(input)) return input;
  return parseAnsi(input)
    .map((segment) => segment.text)
    .join("");
}

/**
 * The CSS colour of an xterm palette index above 15 (0–15 are themed in CSS classes).
 * @param {number} index 16–255
 */
export function paletteColour(index) {
  if (index >= 232) {
    const grey = 8 + (index - 232) * 10;
    return `rgb(${grey}, ${grey}, ${grey})`;
  }
  const cube = index - 16;
  const level = (v) => (v === 0 ? 0 : 55 + v * 40);
  return `rgb(${level(Math.floor(cube / 36))}, ${level(Math.floor(cube / 6) % 6)}, ${level(cube % 6)})`;
}

/**
 * Applies a segment style to an element: classes for the themed 16 colours and flags, CSSOM
 * properties (never a `style` attribute string) for other colours.
 *
 * @param {HTMLElement} el
 * @param {Style} style
 */
function applyStyle(el, style) {
  let { fg, bg } = style;
  const classes = ["ansi"];
  if (style.inverse) {
    [fg, bg] = [bg, fg];
    if (fg === null) classes.push("ansi-inverse-fg");
    if (bg === null) classes.push("ansi-inverse-bg");
  }
  if (style.bold) classes.push("ansi-bold");
  if (style.dim) classes.push("ansi-dim");
  if (style.italic) classes.push("ansi-italic");
  if (style.underline) classes.push("ansi-underline");
  if (style.strike) classes.push("ansi-strike");
  if (typeof fg === "number" && fg < 16) classes.push(`ansi-fg-${fg}`);
  else if (typeof fg === "number") el.style.color = paletteColour(fg);
  else if (typeof fg === "string") el.style.color = fg;
  if (typeof bg === "number" && bg < 16) classes.push(`ansi-bg-${bg}`);
  else if (typeof bg === "number") el.style.backgroundColor = paletteColour(bg);
  else if (typeof bg === "string") el.style.backgroundColor = bg;
  el.className = classes.join(" ");
}

/**
 * Appends `text` to `parent`, wrapping the parts inside `marks` in `<mark>`.
 *
 * @param {Node} parent
 * @param {string} text
 * @param {number} offset where `text` starts in the whole visible text
 * @param {Array<[number, number]>} marks sorted, non-overlapping [start, end) ranges
 */
function appendMarked(parent, text, offset, marks) {
  let pos = 0;
  for (const [from, to] of marks) {
    const a = Math.max(from - offset, pos);
    const b = Math.min(to - offset, text.length);
    if (b <= a) continue;
    if (a > pos) parent.appendChild(document.createTextNode(text.slice(pos, a)));
    const mark = document.createElement("mark");
    mark.textContent = text.slice(a, b);
    parent.appendChild(mark);
    pos = b;
  }
  if (pos < text.length) parent.appendChild(document.createTextNode(text.slice(pos)));
}

/**
 * Renders segments into `parent` as text nodes and styled spans.
 *
 * @param {Node} parent
 * @param {Segment[]} segments
 * @param {Array<[number, number]>} [marks] ranges of the visible text to highlight
 */
export function renderSegments(parent, segments, marks = []) {
  let offset = 0;
  for (const { text, style } of segments) {
    const target = style ? document.createElement("span") : parent;
    if (style) applyStyle(/** @type {HTMLElement} */ (target), style);
    if (marks.length) appendMarked(target, text, offset, marks);
    else target.appendChild(document.createTextNode(text));
    if (target !== parent) parent.appendChild(target);
    offset += text.length;
  }
}
