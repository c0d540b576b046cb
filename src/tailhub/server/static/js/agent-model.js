/**
 * An agent's run as a timeline, built from the container's agent events. No DOM.
 *
 * `tailhub run` publishes each Claude Code or Codex event as a `log` whose
 * `data.metadata` is `{"agent": "claude" | "codex", "event": <the event>}` (with the
 * session's summary and an attention flag beside them, for the hub) and whose
 * `data.message` is a one-line description. `AgentTimeline` folds those entries, in `seq`
 * order, into steps a person reads:
 *
 * - `turn`: a new turn (Claude: a new API message of the main thread; Codex: `turn.started`);
 * - `text`, `thinking`: what the agent said or thought;
 * - `tool`: a tool call joined to its result by id (`tool_use.id` ↔ `tool_result.tool_use_id`;
 *   a Codex item by `item.id`), with the steps of a subagent (events whose
 *   `parent_tool_use_id` names the call) as its `children`;
 * - `system`, `result`: the rest of the stream (init, retries, compaction, a run's result);
 * - `raw`: an event this module cannot read; it is shown as it came.
 *
 * Guarantees: `add` never throws, whatever an event holds (an event it cannot read becomes a
 * `raw` step); each step keeps the entries it came from. `summary` adds the events up the
 * way the hub's agent summary does (see docs/agents.md), from the events held here.
 * @module agent-model
 */

/** @typedef {import("./entry.js").Entry} Entry */

/**
 * @typedef {object} Step
 * @property {number} key unique, increasing in timeline order of creation
 * @property {"turn" | "text" | "thinking" | "tool" | "system" | "result" | "raw"} kind
 * @property {string} agent `claude` or `codex`
 * @property {Entry} entry the entry that began the step
 * @property {Entry | null} last the latest entry that changed it
 * @property {string} level `info`, `warn`, `error`, `debug`
 * @property {string} text the step's one-line summary (the hub's description)
 * @property {string} name a tool's name
 * @property {string} id a tool call's or Codex item's id, or ""
 * @property {any} input a tool call's input (object), or null
 * @property {any} item a Codex item, as last seen, or null
 * @property {any} event the event (for text, thinking, system, result, raw)
 * @property {ToolResult | null} result a Claude tool call's result, once it came
 * @property {Step[]} children a subagent's steps (for the call that started it)
 * @property {Step | null} parent the call whose subagent took this step
 * @property {boolean} ended the run or turn ended before this call had a result
 * @property {boolean} open whether its details are shown
 * @property {boolean} full whether long details are shown whole
 * @property {number} version bumped on every change (details are cached by it)
 * @property {any} cache details made for `version`
 */

/**
 * @typedef {object} ToolResult
 * @property {any} content the `tool_result` block's content
 * @property {boolean} isError
 * @property {any} structured the event's `tool_use_result`
 * @property {Entry} entry
 */

/** @param {unknown} value @returns {value is Record<string, any>} */
export function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** @param {unknown} value */
function str(value) {
  return typeof value === "string" ? value : "";
}

/** @param {unknown} value */
function num(value) {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}

/**
 * The agent event an entry carries, or null when it carries none.
 * @param {Entry} entry
 * @returns {{agent: string, event: any} | null}
 */
export function agentEvent(entry) {
  if (entry.type !== "log") return null;
  const data = /** @type {any} */ (entry.raw).data;
  const meta = isObject(data) ? data.metadata : undefined;
  if (!isObject(meta) || (meta.agent !== "claude" && meta.agent !== "codex")) return null;
  return { agent: meta.agent, event: meta.event };
}

/** The summary fields the dashboard shows, as the hub's `agent` object names them. */
export class LiveSummary {
  /** @param {string} kind */
  constructor(kind) {
    this.kind = kind;
    /** @type {string | null} */
    this.model = null;
    this.turns = 0;
    /** @type {Record<string, number>} */
    this.toolCalls = {};
    this.tokens = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
    /** @type {number | null} */
    this.costUsd = null;
    /** @type {number | null} */
    this.contextWindow = null;
    /** The main thread's last input, in tokens. */
    this.context = 0;
    /** @type {string | null | undefined} undefined: nothing seen that sets it */
    this.activity = undefined;
    /** @type {string | null} */
    this.lastText = null;
    /** @type {string | null | undefined} */
    this.result = undefined;
    /** @type {number | null} the latest result's duration (ms) */
    this.durationMs = null;
    /** @type {Map<string, number[]>} tokens counted per API message */
    this.messages = new Map();
    /** @type {Set<string>} tool call ids counted */
    this.calls = new Set();
  }

  get contextPct() {
    if (!this.contextWindow) return null;
    return Math.round((1000 * this.context) / this.contextWindow) / 10;
  }

  /** @param {string} name @param {string} id */
  countCall(name, id) {
    if (id && this.calls.has(id)) return;
    if (id) this.calls.add(id);
    this.toolCalls[name] = (this.toolCalls[name] ?? 0) + 1;
  }

  /**
   * Counts a Claude API message's usage once per message id (a repeat adds what grew).
   * @param {string} id @param {any} usage @param {boolean} main
   */
  usage(id, usage, main) {
    if (!isObject(usage)) return;
    const now = [
      num(usage.input_tokens),
      num(usage.output_tokens),
      num(usage.cache_read_input_tokens),
      num(usage.cache_creation_input_tokens),
    ];
    const before = (id && this.messages.get(id)) || [0, 0, 0, 0];
    const counted = now.map((n, i) => Math.max(n, before[i]));
    const keys = /** @type {const} */ (["input", "output", "cacheRead", "cacheWrite"]);
    keys.forEach((key, i) => {
      this.tokens[key] += counted[i] - before[i];
    });
    if (id) this.messages.set(id, counted);
    if (main) this.context = counted[0] + counted[2] + counted[3];
  }
}

/** Codex item types that are tool calls, and the names the summary counts them by. */
const CODEX_TOOLS = new Map([
  ["command_execution", "shell"],
  ["file_change", "file_change"],
  ["web_search", "web_search"],
  ["mcp_tool_call", "mcp"],
  ["todo_list", "todo_list"],
]);

export class AgentTimeline {
  constructor() {
    this.reset();
  }

  reset() {
    /** @type {Step[]} top-level steps, in order */
    this.steps = [];
    /** @type {Map<string, Step>} tool calls and Codex items by id */
    this.byId = new Map();
    /** @type {Set<Step>} tool calls still waiting for their result */
    this.running = new Set();
    /** @type {Map<string, Step>} Codex text and reasoning items by id */
    this.textById = new Map();
    /** @type {Set<string>} Claude API message ids of the main thread seen */
    this.messageIds = new Set();
    /** @type {LiveSummary | null} */
    this.summary = null;
    /** How many agent events were read. */
    this.events = 0;
    /** The highest seq folded in. */
    this.lastSeq = 0;
    /** Bumped whenever a step changed or was added (views compare it). */
    this.version = 0;
    this.keys = 0;
    this.turns = 0;
  }

  /**
   * Folds one entry in. Entries must come in `seq` order; one that is not an agent event is
   * ignored, except that a new run of the container starts the timeline afresh.
   * @param {Entry} entry
   * @returns {boolean} whether the timeline changed
   */
  add(entry) {
    if (entry.runStart && this.events) this.reset();
    if (entry.seq > this.lastSeq) this.lastSeq = entry.seq;
    const found = agentEvent(entry);
    if (!found) return false;
    this.events++;
    this.version++;
    const { agent, event } = found;
    if (!this.summary || this.summary.kind !== agent) this.summary = new LiveSummary(agent);
    try {
      if (!isObject(event) || typeof event.type !== "string") throw new Error("not an event");
      if (agent === "codex") this.codex(entry, event);
      else this.claude(entry, event);
    } catch {
      this.push(this.step("raw", agent, entry, { event }), null);
    }
    return true;
  }

  /**
   * @param {Step["kind"]} kind @param {string} agent @param {Entry} entry
   * @param {Partial<Step>} [fields]
   * @returns {Step}
   */
  step(kind, agent, entry, fields = {}) {
    return {
      key: ++this.keys,
      kind,
      agent,
      entry,
      last: null,
      level: entry.level,
      text: entry.text,
      name: "",
      id: "",
      input: null,
      item: null,
      event: null,
      result: null,
      children: [],
      parent: null,
      ended: false,
      open: false,
      full: false,
      version: 0,
      cache: null,
      ...fields,
    };
  }

  /**
   * Adds a step at the top level, or under the call whose subagent took it.
   * @param {Step} step @param {string | null} parentId
   */
  push(step, parentId) {
    const parent = parentId ? this.byId.get(parentId) : undefined;
    if (parent) {
      step.parent = parent;
      parent.children.push(step);
      parent.version++;
    } else {
      this.steps.push(step);
    }
    return step;
  }

  /** A run or turn ended: the calls still without a result will not get one. */
  endRunning() {
    for (const step of this.running) {
      step.ended = true;
      step.version++;
    }
    this.running.clear();
  }

  // -- Claude Code -------------------------------------------------------------------

  /** @param {Entry} entry @param {Record<string, any>} event */
  claude(entry, event) {
    const parentId = str(event.parent_tool_use_id) || null;
    const summary = /** @type {LiveSummary} */ (this.summary);
    switch (event.type) {
      case "assistant": {
        const message = event.message;
        if (!isObject(message) || !Array.isArray(message.content)) throw new Error("bad message");
        const id = str(message.id);
        const main = !parentId;
        if (main && str(message.model) && message.model !== "<synthetic>") {
          summary.model = message.model;
        }
        if (main && id && !this.messageIds.has(id)) {
          this.messageIds.add(id);
          this.turns++;
          summary.turns++;
          this.push(this.step("turn", "claude", entry, { text: `Turn ${this.turns}` }), null);
        }
        if (!id || !summary.messages.has(id) || isObject(message.usage)) {
          summary.usage(id, message.usage, main);
        }
        for (const block of message.content) {
          if (!isObject(block)) continue;
          if (block.type === "text" && str(block.text).trim()) {
            if (main) summary.lastText = block.text;
            this.push(this.step("text", "claude", entry, { event: block.text }), parentId);
          } else if (block.type === "thinking") {
            const text = str(block.thinking);
            this.push(this.step("thinking", "claude", entry, { event: text }), parentId);
          } else if (typeof block.type === "string" && block.type.endsWith("_tool_result")) {
            // A server tool's result (web search, code execution) comes in the same message.
            const call = this.byId.get(str(block.tool_use_id));
            if (call) {
              this.running.delete(call);
              const failed = isObject(block.content) && typeof block.content.error_code === "string";
              call.result = { content: block.content, isError: failed, structured: null, entry };
              call.last = entry;
              call.version++;
            }
          } else if (block.type === "tool_use" || block.type === "server_tool_use") {
            const name = str(block.name) || "tool";
            const callId = str(block.id);
            summary.countCall(name, callId);
            summary.activity = entry.text.replace(/^↳ /, "");
            const known = callId ? this.byId.get(callId) : undefined;
            if (known) {
              known.input = block.input ?? null;
              known.version++;
              continue;
            }
            const step = this.step("tool", "claude", entry, {
              name,
              id: callId,
              input: block.input ?? null,
            });
            if (callId) this.byId.set(callId, step);
            this.running.add(step);
            this.push(step, parentId);
          }
        }
        return;
      }
      case "user": {
        const message = event.message;
        const content = isObject(message) ? message.content : undefined;
        if (typeof content === "string") {
          this.push(this.step("text", "claude", entry, { event: content, name: "user" }), parentId);
          return;
        }
        if (!Array.isArray(content)) throw new Error("bad message");
        let joined = false;
        for (const block of content) {
          if (!isObject(block) || block.type !== "tool_result") continue;
          const callId = str(block.tool_use_id);
          /** @type {ToolResult} */
          const result = {
            content: block.content,
            isError: block.is_error === true,
            structured: event.tool_use_result,
            entry,
          };
          let call = callId ? this.byId.get(callId) : undefined;
          if (!call) {
            // A result whose call this page does not hold (older than the tail kept here).
            call = this.step("tool", "claude", entry, { name: "", id: callId });
            if (callId) this.byId.set(callId, call);
            this.push(call, parentId);
          }
          call.result = result;
          call.last = entry;
          this.running.delete(call);
          call.text = entry.text.replace(/^↳ /, "");
          call.level = result.isError ? "error" : call.level === "error" ? "info" : call.level;
          call.version++;
          joined = true;
        }
        if (!joined) this.push(this.step("system", "claude", entry, { event }), parentId);
        return;
      }
      case "result": {
        summary.result = str(event.subtype) || "unknown";
        summary.activity = null;
        if (typeof event.total_cost_usd === "number") summary.costUsd = event.total_cost_usd;
        if (typeof event.num_turns === "number" && event.num_turns >= 0) {
          summary.turns = event.num_turns;
        }
        if (typeof event.duration_ms === "number") summary.durationMs = event.duration_ms;
        if (isObject(event.modelUsage)) {
          for (const [name, use] of Object.entries(event.modelUsage)) {
            if (summary.model === null) summary.model = name;
            const window = isObject(use) ? num(use.contextWindow) : 0;
            if (window && (name === summary.model || summary.contextWindow === null)) {
              summary.contextWindow = window;
            }
          }
        }
        const level = event.is_error === true ? "error" : entry.level;
        this.endRunning();
        this.push(this.step("result", "claude", entry, { event, level }), null);
        return;
      }
      case "stream_event":
        return; // token deltas: the raw view has them
      case "system":
        if (event.subtype === "init") {
          if (str(event.model)) summary.model = event.model;
          summary.activity = "starting";
        } else if (event.subtype === "api_retry") {
          summary.activity = "waiting to retry the API";
        } else if (event.subtype === "compact_boundary") {
          summary.activity = "compacting context";
        }
        this.push(this.step("system", "claude", entry, { event }), parentId);
        return;
      default:
        this.push(this.step("system", "claude", entry, { event }), parentId);
    }
  }

  // -- Codex -------------------------------------------------------------------------

  /** @param {Entry} entry @param {Record<string, any>} event */
  codex(entry, event) {
    const summary = /** @type {LiveSummary} */ (this.summary);
    const type = event.type;
    if (type === "turn.started") {
      this.turns++;
      summary.turns++;
      summary.result = null;
      summary.activity = "thinking";
      this.push(this.step("turn", "codex", entry, { text: `Turn ${this.turns}` }), null);
      return;
    }
    if (type === "turn.completed" || type === "turn.failed") {
      summary.result = type === "turn.completed" ? "completed" : "failed";
      summary.activity = null;
      const usage = event.usage;
      if (type === "turn.completed" && isObject(usage)) {
        const fresh = num(usage.input_tokens);
        const cached = Math.min(num(usage.cached_input_tokens), fresh);
        summary.tokens.input += fresh - cached;
        summary.tokens.output += num(usage.output_tokens);
        summary.tokens.cacheRead += cached;
      }
      this.endRunning();
      this.push(this.step("result", "codex", entry, { event }), null);
      return;
    }
    if (!type.startsWith("item.")) {
      this.push(this.step("system", "codex", entry, { event }), null);
      return;
    }
    const item = event.item;
    if (!isObject(item) || typeof item.type !== "string") throw new Error("bad item");
    const id = str(item.id);
    if (item.type === "agent_message" || item.type === "reasoning") {
      const kind = item.type === "agent_message" ? "text" : "thinking";
      if (kind === "text" && str(item.text).trim()) summary.lastText = item.text;
      if (kind === "thinking") summary.activity = "thinking";
      const known = id ? this.textById.get(id) : undefined;
      if (known) {
        known.event = str(item.text);
        known.text = entry.text;
        known.last = entry;
        known.version++;
        return;
      }
      const step = this.step(kind, "codex", entry, { event: str(item.text), id });
      if (id) this.textById.set(id, step);
      this.push(step, null);
      return;
    }
    const counted = CODEX_TOOLS.get(item.type);
    if (counted && item.type !== "todo_list") {
      const name =
        item.type === "mcp_tool_call" ? `mcp__${str(item.server) || "unknown"}__${str(item.tool) || "unknown"}` : counted;
      summary.countCall(name, id);
      summary.activity = entry.text;
    }
    const known = id ? this.byId.get(id) : undefined;
    const failed =
      item.status === "failed" ||
      (typeof item.exit_code === "number" && item.exit_code !== 0) ||
      (item.error !== undefined && item.error !== null);
    const level = failed ? "error" : entry.level === "error" ? "error" : "info";
    const done = event.type === "item.completed";
    if (known) {
      known.item = item;
      known.text = entry.text;
      known.last = entry;
      known.level = level;
      known.version++;
      if (done) this.running.delete(known);
      return;
    }
    const step = this.step("tool", "codex", entry, { name: item.type, id, item, level });
    if (id) this.byId.set(id, step);
    if (!done) this.running.add(step);
    this.push(step, null);
  }
}

/**
 * The header's numbers: the hub's summary of the session (complete, but refreshed every few
 * seconds) brought up to date with what the events held here say. Counts that only grow
 * (turns, tokens, tool calls) take the larger of the two; what the latest event says
 * (model, cost, context, activity, result) comes from the events when they have said it.
 * @param {Record<string, any> | null | undefined} hub the session's `agent` object
 * @param {LiveSummary | null} live
 */
export function mergeSummary(hub, live) {
  const base = isObject(hub) ? hub : {};
  const tokens = isObject(base.tokens) ? base.tokens : {};
  const hubCalls = isObject(base.toolCalls) ? base.toolCalls : {};
  /** @type {Record<string, number>} */
  const toolCalls = {};
  for (const [name, n] of Object.entries(hubCalls)) toolCalls[name] = num(n);
  for (const [name, n] of Object.entries(live?.toolCalls ?? {})) {
    toolCalls[name] = Math.max(toolCalls[name] ?? 0, n);
  }
  /** @param {"input" | "output" | "cacheRead" | "cacheWrite"} key */
  const most = (key) => Math.max(num(tokens[key]), live?.tokens[key] ?? 0);
  const window = live?.contextWindow ?? (num(base.contextWindow) || null);
  let contextPct = typeof base.contextPct === "number" ? base.contextPct : null;
  if (live && window && live.context) contextPct = Math.round((1000 * live.context) / window) / 10;
  return {
    kind: live?.kind ?? str(base.kind),
    model: live?.model ?? (str(base.model) || null),
    turns: Math.max(num(base.turns), live?.turns ?? 0),
    toolCalls,
    tokens: {
      input: most("input"),
      output: most("output"),
      cacheRead: most("cacheRead"),
      cacheWrite: most("cacheWrite"),
    },
    costUsd: live?.costUsd ?? (typeof base.costUsd === "number" ? base.costUsd : null),
    contextPct,
    contextWindow: window,
    activity: live && live.activity !== undefined ? live.activity : base.activity ?? null,
    lastText: live?.lastText ?? base.lastText ?? null,
    result: live && live.result !== undefined ? live.result : base.result ?? null,
    durationMs: live?.durationMs ?? null,
  };
}
