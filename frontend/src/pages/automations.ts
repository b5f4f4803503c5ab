// Automations: list, switch on/off, run now, and the traces of recent runs.

import { html } from "lit";
import { customElement, property, state } from "lit/decorators.js";
import { api, type Automation } from "../api.js";
import { LightElement } from "../base.js";
import { session } from "../session.js";
import { confirmAction, errorMessage, EventsController, fmtTime, Loader, notify, renderLoad } from "../ui.js";

interface TraceStep {
  path: string;
  kind: string;
  started: number;
  duration: number;
  result: unknown;
  error: string | null;
}

interface Trace {
  automation_id: string;
  run_id: string;
  trigger: Record<string, unknown>;
  started: number;
  finished: number | null;
  outcome: string;
  error: string | null;
  conditions: Record<string, unknown>[];
  steps: TraceStep[];
}

@customElement("ev-automations")
export class AutomationsPage extends LightElement {
  @property() selected: string | null = null;
  @state() private busy: string | null = null;
  private automations = new Loader(this, () => api.get<Automation[]>("/api/automations"));
  private traces = new Loader<Trace[] | null>(this, () =>
    this.selected
      ? api.get<Trace[]>(`/api/automations/${encodeURIComponent(this.selected)}/traces`)
      : Promise.resolve(null),
  );

  constructor() {
    super();
    new EventsController(this, ["automation_triggered"], () => {
      void this.automations.reload();
      if (this.selected) void this.traces.reload();
    }, 500);
  }

  protected override willUpdate(changed: Map<PropertyKey, unknown>): void {
    if (changed.has("selected") && changed.get("selected") !== undefined) {
      this.traces.state = { kind: "loading" };
      void this.traces.reload();
    }
  }

  private async post(automation: Automation, action: "enable" | "disable" | "trigger"): Promise<void> {
    if (action === "trigger" && !(await confirmAction("Run automation", `Run “${automation.alias}” now (its conditions are skipped)?`, "Run"))) {
      return;
    }
    this.busy = automation.id;
    try {
      await api.post(`/api/automations/${encodeURIComponent(automation.id)}/${action}`, {});
      notify(action === "trigger" ? `Started: ${automation.alias}` : `${automation.alias} ${action}d`);
      await this.automations.reload();
      if (this.selected === automation.id) await this.traces.reload();
    } catch (err) {
      notify(`${automation.alias}: ${errorMessage(err)}`, "error");
    } finally {
      this.busy = null;
    }
  }

  private renderList(automations: Automation[]) {
    if (automations.length === 0) return html`<p class="muted">No automations configured.</p>`;
    return html`<table class="data responsive">
      <thead><tr><th>Automation</th><th>Mode</th><th>Last triggered</th><th>On</th><th></th></tr></thead>
      <tbody>
        ${automations.map(
          (a) => html`<tr data-automation-id=${a.id} class=${this.selected === a.id ? "selected" : ""}>
            <td data-label="Automation">
              <a href="#/automations/${encodeURIComponent(a.id)}">${a.alias}</a>
              ${a.description ? html`<div class="muted small">${a.description}</div>` : null}
            </td>
            <td data-label="Mode">${a.mode}${a.running ? html` <span class="badge busy">running</span>` : null}</td>
            <td data-label="Last triggered">${fmtTime(a.last_triggered)}</td>
            <td data-label="On">
              <label class="switch">
                <input type="checkbox" role="switch" .checked=${a.enabled}
                  ?disabled=${!session.canOperate || this.busy === a.id}
                  aria-label="${a.alias} enabled"
                  @change=${() => this.post(a, a.enabled ? "disable" : "enable")} />
                <span class="slider"></span>
              </label>
            </td>
            <td data-label="">
              ${session.canOperate
                ? html`<button class="small" data-action="run" ?disabled=${this.busy === a.id} @click=${() => this.post(a, "trigger")}>Run</button>`
                : null}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  private renderTraces(traces: Trace[] | null) {
    if (traces === null) return null;
    if (traces.length === 0) return html`<p class="muted">No runs recorded yet.</p>`;
    const sorted = [...traces].sort((a, b) => b.started - a.started);
    return html`${sorted.map(
      (t) => html`<details class="trace card" data-run-id=${t.run_id}>
        <summary>
          <span class="badge ${t.outcome === "error" ? "bad" : t.outcome === "running" ? "busy" : "ok"}">${t.outcome}</span>
          ${fmtTime(t.started)} <span class="muted">${String(t.trigger.description ?? t.trigger.platform ?? "")}</span>
        </summary>
        ${t.error ? html`<p class="error-box">${t.error}</p>` : null}
        ${t.conditions.length
          ? html`<h4>Conditions</h4><ul>${t.conditions.map((c) => html`<li><code>${JSON.stringify(c)}</code></li>`)}</ul>`
          : null}
        <h4>Steps</h4>
        ${t.steps.length === 0
          ? html`<p class="muted">No step ran.</p>`
          : html`<ol class="steps">
              ${t.steps.map(
                (s) => html`<li class=${s.error ? "bad-text" : ""}>
                  <code>${s.path}</code> ${s.kind} · ${(s.duration * 1000).toFixed(1)} ms
                  ${s.error ? html`<div>${s.error}</div>` : s.result !== null && s.result !== undefined ? html`<div class="muted small">${JSON.stringify(s.result)}</div>` : null}
                </li>`,
              )}
            </ol>`}
      </details>`,
    )}`;
  }

  override render() {
    const selected = this.automations.value?.find((a) => a.id === this.selected);
    return html`
      <h1>Automations</h1>
      ${renderLoad(this.automations, (a) => this.renderList(a), "Automations")}
      ${this.selected
        ? html`<section class="traces">
            <h2>Traces: ${selected?.alias ?? this.selected}</h2>
            ${renderLoad(this.traces, (t) => this.renderTraces(t), "Traces")}
          </section>`
        : null}
    `;
  }
}
