/**
 * The fleet's cost in the top bar, from the hub's `GET /api/fleet` (the sum over every
 * session it lists). Asked for with the session list; hidden while no session has an agent
 * or the hub does not answer.
 * @module fleet
 */

import { count, money } from "./format.js";

export class FleetCost {
  /**
   * @param {HTMLElement} element where the cost is shown
   * @param {() => string} token the hub's token
   */
  constructor(element, token) {
    this.element = element;
    this.token = token;
    this.busy = false;
    element.hidden = true;
  }

  /** Asks the hub for the totals (once at a time) and shows them. */
  async refresh() {
    if (this.busy) return;
    this.busy = true;
    try {
      const response = await fetch(new URL("api/fleet", window.location.href), {
        headers: { Authorization: `Bearer ${this.token()}` },
        cache: "no-store",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.show(await response.json());
    } catch {
      this.element.hidden = true;
    } finally {
      this.busy = false;
    }
  }

  /** @param {Record<string, any>} fleet */
  show(fleet) {
    const agents = Number(fleet.agents) || 0;
    const cost = typeof fleet.costUsd === "number" ? fleet.costUsd : 0;
    this.element.hidden = agents === 0;
    const text = `Fleet ${money(cost)}`;
    const strong = this.element.querySelector("strong");
    if (strong && strong.textContent !== money(cost)) strong.textContent = money(cost);
    const t = fleet.tokens ?? {};
    this.element.title = `${text} over ${count(agents)} agent session${agents === 1 ? "" : "s"}; ${count(Number(fleet.running) || 0)} running, ${count(Number(fleet.failed) || 0)} failed; tokens: ${count(Number(t.input) || 0)} input, ${count(Number(t.output) || 0)} output`;
  }
}
