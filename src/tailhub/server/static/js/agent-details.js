/**
 * What a timeline step shows when it is opened, as a list of text lines. No DOM.
 *
 * Each line is one fixed-height line of the agent view, so a step's height is its line count.
 * Tool output is cleaned of escape sequences and control characters; long outputs are cut
 * (lines and characters) until the step is shown whole, with a last line that says what was
 * left out. Diffs come from `tool_use_result.structuredPatch`, else from the call's old and
 * new strings (Edit, MultiEdit), its content (Write), or a Codex change's own diff.
 * @module agent-details
 */

import { stripAnsi } from "./ansi.js";
import { isObject } from "./agent-model.js";

/** @typedef {import("./agent-model.js").Step} Step */

/**
 * @typedef {object} Line
 * @property {string} text
 * @property {string} cls how it looks: `head`, `cmd`, `out`, `add`, `del`, `hunk`, `ctx`,
 *   `file`, `ok`, `bad`, `json`, `text`, `more` (the "show all" line)
 */

/** Lines of one section shown until the step is shown whole. */
export const SECTION_LINES = 40;
/** Characters of one line shown until the step is shown whole. */
export const LINE_CHARS = 1000;

const DIFF_TOOLS = new Set(["Edit", "MultiEdit", "Write", "NotebookEdit"]);
const SHELL_TOOLS = new Set(["Bash", "BashOutput"]);
// Control characters other than tab (escape sequences are parsed out first).
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** @param {unknown} value */
function str(value) {
  return typeof value === "string" ? value : "";
}

/**
 * Text as inert lines: escape sequences parsed out, carriage returns and other control
 * characters dropped.
 * @param {string} text
 */
export function cleanLines(text) {
  const lines = stripAnsi(text.replace(/\r\n/g, "\n")).split("\n");
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  return lines.map((line) => line.replace(CONTROL, ""));
}

/**
 * A tool result's content as text: a string, or the text blocks of a list.
 * @param {unknown} content
 */
export function resultText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((block) => (isObject(block) && typeof block.text === "string" ? block.text : ""))
      .filter(Boolean)
      .join("\n");
  }
  if (content === undefined || content === null) return "";
  return JSON.stringify(content, null, 2) ?? "";
}

/** @param {unknown} value */
function jsonLines(value) {
  if (value === undefined) return [];
  return (JSON.stringify(value, null, 2) ?? String(value)).split("\n");
}

/**
 * The exit code a shell call ended with, or null while unknown (or not a shell call).
 * @param {Step} step
 * @returns {number | "error" | null}
 */
export function exitCode(step) {
  if (step.agent === "codex") {
    return typeof step.item?.exit_code === "number" ? step.item.exit_code : null;
  }
  if (!step.result || !SHELL_TOOLS.has(step.name)) return null;
  const match = /^(?:Error: )?Exit code (-?\d+)/m.exec(resultText(step.result.content));
  if (match) return Number(match[1]);
  return step.result.isError ? "error" : 0;
}

/** Builds the lines of one step, cutting sections unless `full`. */
class Lines {
  /** @param {boolean} full */
  constructor(full) {
    this.full = full;
    /** @type {Line[]} */
    this.lines = [];
    this.cut = 0;
  }

  /** @param {string} text @param {string} cls */
  one(text, cls) {
    if (!this.full && text.length > LINE_CHARS) {
      this.cut += text.length - LINE_CHARS;
      text = `${text.slice(0, LINE_CHARS)}…`;
    }
    this.lines.push({ text, cls });
  }

  /**
   * @param {string[]} lines
   * @param {string | ((line: string) => string)} cls
   */
  section(lines, cls) {
    const shown = this.full ? lines : lines.slice(0, SECTION_LINES);
    for (const line of shown) this.one(line, typeof cls === "string" ? cls : cls(line));
    if (shown.length < lines.length) {
      this.cut += lines.length - shown.length;
      this.one(`… ${lines.length - shown.length} more lines`, "out");
    }
  }

  done() {
    if (this.cut) this.lines.push({ text: "Show all", cls: "more" });
    return this.lines;
  }
}

/** @param {string} line */
function diffClass(line) {
  if (line.startsWith("@@")) return "hunk";
  if (line.startsWith("+")) return "add";
  if (line.startsWith("-")) return "del";
  return "ctx";
}

/**
 * @param {Lines} out
 * @param {unknown} patch a `structuredPatch`: hunks with old/new start and count, and lines
 * @returns {boolean} whether there was one
 */
function structuredPatch(out, patch) {
  if (!Array.isArray(patch) || !patch.length) return false;
  /** @type {string[]} */
  const lines = [];
  for (const hunk of patch) {
    if (!isObject(hunk) || !Array.isArray(hunk.lines)) continue;
    lines.push(`@@ -${hunk.oldStart ?? "?"},${hunk.oldLines ?? "?"} +${hunk.newStart ?? "?"},${hunk.newLines ?? "?"} @@`);
    for (const line of hunk.lines) lines.push(...cleanLines(str(line)));
  }
  if (!lines.length) return false;
  out.section(lines, diffClass);
  return true;
}

/**
 * @param {Lines} out @param {string} before @param {string} after
 */
function replacement(out, before, after) {
  const lines = [
    "@@ edit @@",
    ...(before ? cleanLines(before).map((line) => `-${line}`) : []),
    ...(after ? cleanLines(after).map((line) => `+${line}`) : []),
  ];
  out.section(lines, diffClass);
}

/** @param {Lines} out @param {Step} step */
function claudeDiff(out, step) {
  const input = isObject(step.input) ? step.input : {};
  const path = str(input.file_path) || str(input.notebook_path);
  if (path) out.one(path, "file");
  const structured = step.result?.structured;
  if (isObject(structured) && structuredPatch(out, structured.structuredPatch)) return;
  if (step.name === "Write") {
    const content = str(input.content) || (isObject(structured) ? str(structured.content) : "");
    out.section(["@@ new content @@", ...cleanLines(content).map((line) => `+${line}`)], diffClass);
  } else if (step.name === "MultiEdit" && Array.isArray(input.edits)) {
    for (const edit of input.edits) {
      if (isObject(edit)) replacement(out, str(edit.old_string), str(edit.new_string));
    }
  } else if ("old_string" in input || "new_string" in input) {
    replacement(out, str(input.old_string), str(input.new_string));
  } else if (isObject(structured) && ("oldString" in structured || "newString" in structured)) {
    replacement(out, str(structured.oldString), str(structured.newString));
  } else {
    out.section(jsonLines(step.input), "json");
  }
}

/** @param {Lines} out @param {Step} step */
function resultSection(out, step) {
  if (!step.result) {
    out.one("… waiting for the result", "head");
    return;
  }
  const text = resultText(step.result.content);
  out.one(step.result.isError ? "result · failed" : "result", step.result.isError ? "bad" : "head");
  out.section(cleanLines(text), step.result.isError ? "bad" : "out");
}

/** @param {Lines} out @param {Step} step */
function claudeTool(out, step) {
  const input = isObject(step.input) ? step.input : {};
  if (SHELL_TOOLS.has(step.name) && typeof input.command === "string") {
    out.section(cleanLines(input.command).map((line, i) => (i ? `  ${line}` : `$ ${line}`)), "cmd");
    const structured = step.result?.structured;
    if (isObject(structured) && (typeof structured.stdout === "string" || typeof structured.stderr === "string")) {
      if (str(structured.stdout)) out.section(cleanLines(structured.stdout), "out");
      if (str(structured.stderr)) out.section(cleanLines(structured.stderr), "bad");
    } else if (step.result) {
      out.section(cleanLines(resultText(step.result.content)), step.result.isError ? "bad" : "out");
    }
    const code = exitCode(step);
    if (code === null) out.one("… running", "head");
    else out.one(code === "error" ? "failed" : `exit ${code}`, code === 0 ? "ok" : "bad");
    return;
  }
  if (DIFF_TOOLS.has(step.name)) {
    claudeDiff(out, step);
    if (step.result?.isError) resultSection(out, step);
    else if (!step.result) out.one("… waiting for the result", "head");
    return;
  }
  if (step.name === "Task" || step.name === "Agent") {
    if (str(input.subagent_type)) out.one(`subagent: ${input.subagent_type}`, "head");
    if (str(input.prompt)) out.section(cleanLines(input.prompt), "text");
    out.one(`${step.children.length} step${step.children.length === 1 ? "" : "s"} below`, "head");
    resultSection(out, step);
    return;
  }
  if (step.input !== null) {
    out.one("input", "head");
    out.section(jsonLines(step.input), "json");
  }
  resultSection(out, step);
}

/** @param {Lines} out @param {Record<string, any>} item */
function codexTool(out, item) {
  switch (item.type) {
    case "command_execution": {
      out.section(cleanLines(str(item.command)).map((line) => `$ ${line}`), "cmd");
      const output = str(item.aggregated_output);
      if (output) out.section(cleanLines(output), "out");
      const code = item.exit_code;
      if (typeof code === "number") out.one(`exit ${code}`, code === 0 ? "ok" : "bad");
      else out.one(`… ${str(item.status) || "running"}`, "head");
      return;
    }
    case "file_change": {
      const changes = Array.isArray(item.changes) ? item.changes : [];
      for (const change of changes) {
        if (!isObject(change)) continue;
        const kind = isObject(change.kind) ? str(change.kind.type) : str(change.kind);
        out.one(`${str(change.path) || "?"}${kind ? ` (${kind})` : ""}`, "file");
        const diff = str(change.diff) || str(change.unified_diff) || (isObject(change.kind) ? str(change.kind.unified_diff) : "");
        if (diff) out.section(cleanLines(diff), diffClass);
        else if (str(change.content)) {
          out.section(cleanLines(change.content).map((line) => `+${line}`), diffClass);
        }
      }
      if (str(item.status)) out.one(item.status, item.status === "failed" ? "bad" : "ok");
      return;
    }
    case "mcp_tool_call": {
      out.one(`${str(item.server)}.${str(item.tool)}`, "head");
      out.section(jsonLines(item.arguments), "json");
      if (item.error !== undefined && item.error !== null) {
        out.one("error", "bad");
        out.section(cleanLines(resultText(isObject(item.error) ? item.error.message ?? item.error : item.error)), "bad");
      } else if (item.result !== undefined && item.result !== null) {
        out.one("result", "head");
        const content = isObject(item.result) ? item.result.content : item.result;
        out.section(cleanLines(resultText(content)), "out");
      }
      return;
    }
    case "todo_list": {
      const items = Array.isArray(item.items) ? item.items : [];
      out.section(
        items.map((todo) => `${isObject(todo) && todo.completed ? "[x]" : "[ ]"} ${isObject(todo) ? str(todo.text) : ""}`),
        "text",
      );
      return;
    }
    default:
      out.section(jsonLines(item), "json");
  }
}

/**
 * Whether a step has anything to open.
 * @param {Step} step
 */
export function hasDetails(step) {
  if (step.kind === "turn") return false;
  if (step.kind === "text" || step.kind === "thinking") {
    const text = str(step.event);
    return text.includes("\n") || text.length > 120 || step.kind === "thinking";
  }
  return true;
}

/**
 * The lines a step shows when open (cached until the step changes).
 * @param {Step} step
 * @returns {Line[]}
 */
export function details(step) {
  const stamp = `${step.version}:${step.full}`;
  if (step.cache?.stamp === stamp) return step.cache.lines;
  const out = new Lines(step.full);
  try {
    if (step.kind === "tool" && step.agent === "codex") codexTool(out, step.item ?? {});
    else if (step.kind === "tool") claudeTool(out, step);
    else if (step.kind === "text" || step.kind === "thinking") out.section(cleanLines(str(step.event)), "text");
    else out.section(jsonLines(step.event), "json");
  } catch {
    out.section(jsonLines(step.event ?? step.input), "json");
  }
  const lines = out.done();
  step.cache = { stamp, lines };
  return lines;
}

/**
 * How a tool step stands: `running` (no result yet), `ok`, `failed`, or `no result` (the run
 * or turn ended without one).
 * @param {Step} step
 */
export function toolState(step) {
  if (step.agent === "codex") {
    if (step.level === "error") return "failed";
    const latest = /** @type {any} */ ((step.last ?? step.entry).raw);
    const type = latest?.data?.metadata?.event?.type;
    const unfinished = type === "item.started" || step.item?.status === "in_progress";
    if (unfinished) return step.ended ? "no result" : "running";
    return "ok";
  }
  if (!step.result) return step.ended ? "no result" : "running";
  return step.result.isError ? "failed" : "ok";
}
