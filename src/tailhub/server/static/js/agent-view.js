/**
 * The agent view of a container's pane: a header with the run's model, cost, tokens, turns,
 * duration and context, and a timeline of its steps (see `agent-model.js`), virtualised like
 * the log. It reads the container's log (`container-log.js`), so it is live and resumes with
 * the log after a reconnect; *Raw view* switches the pane back to the log's lines.
 *
 * The view appears once the container's log holds an agent event or the hub's session
 * summary names an agent. Every piece of text from the agent reaches the page through
 * `textContent`, never as markup.
 * @module agent-view
 */

import { VirtualList } from "./virtual-list.js";
import { AgentTimeline, mergeSummary } from "./agent-model.js";
import { details, exitCode, hasDetails, toolState } from "./agent-details.js";
import { count, duration, logTime, money } from "./format.js";

/** @typedef {import("./entry.js").Entry} Entry */
/** @typedef {import("./container-log.js").ContainerLog} ContainerLog */
/** @typedef {import("./sessions.js").Session} Session */
/** @typedef {import("./agent-model.js").Step} Step */

/** @typedef {{step: Step, depth: number, order: number}} Row */

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

/** @param {HTMLElement} node @param {string} text */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** A token count in a few characters: `950`, `12.3k`, `1.2M`. @param {number} n */
export function tokens(n) {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

const KIND_LABELS = {
  turn: "TURN",
  text: "SAYS",
  thinking: "THINK",
  system: "EVENT",
  result: "RESULT",
  raw: "RAW",
};

/**
 * The timeline as rows: every top-level step, and under an opened call its subagent's steps.
 * @param {Step[]} steps
 */
function flatten(steps) {
  /** @type {Row[]} */
  const rows = [];
  /** @param {Step[]} list @param {number} depth */
  const walk = (list, depth) => {
    for (const step of list) {
      rows.push({ step, depth, order: rows.length });
      if (step.open && step.children.length) walk(step.children, depth + 1);
    }
  };
  walk(steps, 0);
  return rows;
}

export class AgentView {
  /**
   * @param {object} options
   * @param {ContainerLog} options.log
   * @param {HTMLElement} options.pane the pane element the view lives in
   * @param {number} options.lineHeight pixels per text line (from the CSS)
   */
  constructor({ log, pane, lineHeight }) {
    this.log = log;
    this.pane = pane;
    this.timeline = new AgentTimeline();
    /** Whether the view shows the timeline (else the raw log). */
    this.agentMode = true;
    /** Whether the container has shown itself to be an agent. */
    this.active = false;
    /** @type {Record<string, any> | null} the hub's summary */
    this.hubSummary = null;
    /** @type {Session | undefined} */
    this.session = undefined;
    /** @type {Entry[]} arrived since the last frame */
    this.pending = [];
    this.rebuild = true;
    this.frame = 0;
    this.shownVersion = -1;

    this.element = el("div", "agent");
    this.element.hidden = true;
    this.element.setAttribute("aria-label", `Agent: ${log.id}`);
    this.element.append(this.buildHeader());
    this.viewport = el("div", "agent-viewport");
    this.viewport.tabIndex = 0;
    this.viewport.setAttribute("role", "feed");
    this.viewport.setAttribute("aria-label", `Agent steps of ${log.id}`);
    this.element.append(this.viewport);

    /** @type {VirtualList<Row>} */
    this.list = new VirtualList(this.viewport, {
      lineHeight,
      renderRow: (row) => this.renderRow(row),
      heightOf: (row) => 1 + (row.step.open && hasDetails(row.step) ? details(row.step).length : 0),
      compare: (a, b) => a.order - b.order,
    });

    this.listener = {
      /** @param {ContainerLog} _log @param {Entry} entry */
      added: (_log, entry) => {
        if (entry.seq <= this.timeline.lastSeq) this.rebuild = true;
        else this.pending.push(entry);
        this.schedule();
      },
      trimmed: () => {
        this.rebuild = true;
        this.schedule();
      },
    };
    log.listeners.add(this.listener);
    this.schedule();
  }

  buildHeader() {
    const head = el("div", "agent-head");
    this.kind = el("span", "agent-kind");
    this.model = el("span", "agent-model");
    this.model.title = "model";
    this.cost = el("span", "agent-cost");
    this.cost.title = "cost of the run so far";
    this.tokenText = el("span", "agent-tokens");
    this.turnText = el("span", "agent-turns");
    this.took = el("span", "agent-took");
    const context = el("span", "agent-context");
    this.contextBar = el("span", "ctx-bar");
    this.contextBar.setAttribute("role", "meter");
    this.contextBar.setAttribute("aria-valuemin", "0");
    this.contextBar.setAttribute("aria-valuemax", "100");
    this.contextBar.setAttribute("aria-label", "Context window used");
    this.contextFill = el("span", "ctx-fill");
    this.contextBar.append(this.contextFill);
    this.contextText = el("span", "ctx-text");
    context.append(this.contextBar, this.contextText);
    this.activity = el("span", "agent-activity");
    this.rawButton = /** @type {HTMLButtonElement} */ (el("button", "btn btn-small agent-raw", "Raw view"));
    this.rawButton.type = "button";
    this.rawButton.setAttribute("aria-pressed", "false");
    this.rawButton.title = "Show the container's log lines as they came";
    this.rawButton.addEventListener("click", () => this.setAgentMode(!this.agentMode));
    head.append(
      this.kind,
      this.model,
      this.cost,
      this.tokenText,
      this.turnText,
      this.took,
      context,
      this.activity,
      this.rawButton,
    );
    return head;
  }

  /** @param {boolean} agent */
  setAgentMode(agent) {
    this.agentMode = agent;
    this.rawButton.setAttribute("aria-pressed", String(!agent));
    this.rawButton.textContent = agent ? "Raw view" : "Agent view";
    this.rawButton.title = agent
      ? "Show the container's log lines as they came"
      : "Show the agent's steps";
    this.showMode();
    if (agent) this.list.follow();
  }

  showMode() {
    this.element.hidden = !this.active;
    this.viewport.hidden = !this.agentMode;
    this.pane.classList.toggle("agent-mode", this.active && this.agentMode);
    this.pane.classList.toggle("agent-raw", this.active && !this.agentMode);
  }

  schedule() {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.flush();
      });
    }
  }

  /** Folds what arrived into the timeline and shows it. */
  flush() {
    const timeline = this.timeline;
    if (this.rebuild) {
      this.rebuild = false;
      this.pending = [];
      const open = this.openKeys();
      timeline.reset();
      for (const entry of this.log.entries) timeline.add(entry);
      this.reopen(open);
    } else if (this.pending.length) {
      const batch = this.pending.sort((a, b) => a.seq - b.seq);
      this.pending = [];
      for (const entry of batch) if (!entry.dropped) timeline.add(entry);
    }
    if (timeline.events && !this.active) {
      this.active = true;
      this.showMode();
    }
    if (timeline.version !== this.shownVersion) {
      this.shownVersion = timeline.version;
      this.list.setItems(flatten(timeline.steps));
    }
    this.updateHeader();
  }

  /** Which steps are open, by the seq and id that make them again after a rebuild. */
  openKeys() {
    const keys = new Set();
    /** @param {Step[]} steps */
    const walk = (steps) => {
      for (const step of steps) {
        if (step.open) keys.add(`${step.entry.seq}:${step.id}:${step.kind}:${step.full}`);
        walk(step.children);
      }
    };
    walk(this.timeline.steps);
    return keys;
  }

  /** @param {Set<string>} keys */
  reopen(keys) {
    if (!keys.size) return;
    /** @param {Step[]} steps */
    const walk = (steps) => {
      for (const step of steps) {
        const key = `${step.entry.seq}:${step.id}:${step.kind}`;
        if (keys.has(`${key}:false`)) step.open = true;
        if (keys.has(`${key}:true`)) step.open = step.full = true;
        walk(step.children);
      }
    };
    walk(this.timeline.steps);
  }

  /**
   * Takes the session as the hub lists it (its summary, status and times).
   * @param {Session | undefined} session
   */
  update(session) {
    this.session = session;
    const summary = session?.agent ?? null;
    if (summary && !this.active) {
      this.active = true;
      this.showMode();
    }
    this.hubSummary = summary;
    this.updateHeader();
  }

  updateHeader() {
    if (!this.active) return;
    const s = mergeSummary(this.hubSummary, this.timeline.summary);
    setText(this.kind, s.kind === "codex" ? "Codex" : s.kind === "claude" ? "Claude" : "agent");
    setText(this.model, s.model ?? "model unknown");
    setText(this.cost, s.costUsd === null ? "$ –" : money(s.costUsd));
    const t = s.tokens;
    setText(this.tokenText, `${tokens(t.input + t.cacheRead + t.cacheWrite)} in · ${tokens(t.output)} out`);
    this.tokenText.title = `tokens: ${count(t.input)} input, ${count(t.output)} output, ${count(t.cacheRead)} cache read, ${count(t.cacheWrite)} cache written`;
    const calls = Object.values(s.toolCalls).reduce((a, b) => a + b, 0);
    setText(this.turnText, `${count(s.turns)} turn${s.turns === 1 ? "" : "s"} · ${count(calls)} tool call${calls === 1 ? "" : "s"}`);
    this.turnText.title = Object.entries(s.toolCalls)
      .map(([name, n]) => `${name}: ${n}`)
      .join(", ");
    // The agent's own duration once its result says it; until then, the session's.
    const session = this.session;
    let took = s.durationMs;
    if (took === null && session && Number.isFinite(session.startedAt)) {
      const end = session.active ? Date.now() : session.endedAt;
      if (Number.isFinite(end)) took = end - session.startedAt;
    }
    setText(this.took, took === null ? "–" : duration(took));
    this.took.title = s.durationMs === null ? "how long the run has taken" : "the run's duration, as its result says";
    const pct = s.contextPct;
    this.contextBar.hidden = pct === null;
    if (pct !== null) {
      const width = `${Math.max(0, Math.min(100, pct))}%`;
      if (this.contextFill.style.width !== width) this.contextFill.style.width = width;
      this.contextBar.setAttribute("aria-valuenow", String(pct));
      this.contextBar.dataset.level = pct >= 90 ? "bad" : pct >= 70 ? "warn" : "ok";
    }
    setText(this.contextText, pct === null ? "context –" : `context ${pct}%`);
    const doing = s.activity ?? (s.result ? `done: ${s.result}` : "");
    setText(this.activity, doing);
    this.activity.title = s.lastText ? `last said: ${s.lastText}` : "";
    this.activity.dataset.state = s.result && !s.activity ? (/fail|error/.test(s.result) ? "bad" : "done") : "busy";
  }

  /** @param {Row} row */
  renderRow(row) {
    const { step } = row;
    let classes = `arow k-${step.kind} lv-${step.level}`;
    if (step.open) classes += " open";
    if (row.depth) classes += " nested";
    const node = el("div", classes);
    node.style.setProperty("--depth", String(row.depth));
    node.dataset.key = String(step.key);
    node.dataset.seq = String(step.entry.seq);
    if (step.id) node.dataset.id = step.id;
    const line = el("div", "a-line");
    line.append(el("span", "a-time", logTime(step.entry.t)));
    const openable = hasDetails(step);
    if (openable) {
      const toggle = /** @type {HTMLButtonElement} */ (el("button", "a-toggle", step.open ? "▾" : "▸"));
      toggle.type = "button";
      toggle.setAttribute("aria-expanded", String(step.open));
      toggle.setAttribute("aria-label", `${step.open ? "Hide" : "Show"} details: ${step.text.slice(0, 80)}`);
      toggle.addEventListener("click", () => this.toggle(step));
      line.append(toggle);
    } else {
      line.append(el("span", "a-toggle-space"));
    }
    let label = step.kind === "tool" ? toolLabel(step) : KIND_LABELS[step.kind];
    if (step.kind === "text" && step.name === "user") label = "USER";
    line.append(el("span", "a-kind", label));
    const text = el("span", "a-text", step.text.replace(/^↳ /, ""));
    line.append(text);
    if (step.kind === "tool") {
      const state = toolState(step);
      const code = exitCode(step);
      let words = state;
      if (typeof code === "number" && state !== "running") words = `exit ${code}`;
      const badge = el("span", `a-state st-${state.replace(" ", "-")}`, words);
      line.append(badge);
      if (step.children.length) {
        line.append(el("span", "a-children", `${step.children.length} step${step.children.length === 1 ? "" : "s"}`));
      }
    }
    node.append(line);
    if (step.open && openable) {
      const box = el("div", "a-details");
      for (const item of details(step)) {
        if (item.cls === "more") {
          const more = /** @type {HTMLButtonElement} */ (el("button", "btn btn-small a-more", "Show all"));
          more.type = "button";
          more.addEventListener("click", () => this.showAll(step));
          const holder = el("div", "dl d-more");
          holder.append(more);
          box.append(holder);
        } else {
          box.append(el("div", `dl d-${item.cls}`, item.text || " "));
        }
      }
      node.append(box);
    }
    return node;
  }

  /** @param {Step} step */
  toggle(step) {
    step.open = !step.open;
    this.relayout(step);
  }

  /** @param {Step} step */
  showAll(step) {
    step.full = true;
    this.relayout(step);
  }

  /** @param {Step} step lay the rows out again, keeping the focus on the step's toggle */
  relayout(step) {
    this.list.stopFollowing();
    this.list.setItems(flatten(this.timeline.steps));
    requestAnimationFrame(() => {
      const button = this.viewport.querySelector(`.arow[data-key="${step.key}"] .a-toggle`);
      /** @type {HTMLElement | null} */ (button)?.focus({ preventScroll: true });
    });
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.log.listeners.delete(this.listener);
    this.list.destroy();
    this.pane.classList.remove("agent-mode", "agent-raw");
    this.element.remove();
  }
}

/** @param {Step} step */
function toolLabel(step) {
  if (step.agent === "codex") {
    const type = step.item?.type;
    if (type === "command_execution") return "SHELL";
    if (type === "file_change") return "EDIT";
    if (type === "mcp_tool_call") return "MCP";
    if (type === "web_search") return "SEARCH";
    if (type === "todo_list") return "TODO";
    return "TOOL";
  }
  return "TOOL";
}
