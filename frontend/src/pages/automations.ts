// Automations: list (an automation whose last run failed is marked with the error), switch
// on/off, run now, and the traces of recent runs.

import { html, nothing } from "lit";
import { customElement, property, state } from "lit/decorators.js";
import { api, type Automation } from "../api.js";
import { LightElement } from "../base.js";
import { fmtNumber, LocaleController, t, tMaybe } from "../i18n.js";
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

const OUTCOME_CLASS: Record<string, string> = {
  error: "bad",
  running: "busy",
  cancelled: "warn",
  stopped: "warn",
  condition_failed: "warn",
};

function outcome(value: string): string {
  return tMaybe(`automations.outcome_${value}`, value);
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
    new LocaleController(this);
    new EventsController(this, ["automation_triggered", "automation_run_finished"], () => {
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
    if (
      action === "trigger" &&
      !(await confirmAction(
        t("automations.run_title"),
        t("automations.run_message", { alias: automation.alias }),
        t("automations.run"),
      ))
    ) {
      return;
    }
    this.busy = automation.id;
    try {
      await api.post(`/api/automations/${encodeURIComponent(automation.id)}/${action}`, {});
      const done =
        action === "trigger"
          ? t("automations.started", { alias: automation.alias })
          : t(action === "enable" ? "automations.turned_on" : "automations.turned_off", { alias: automation.alias });
      notify(done);
      await this.automations.reload();
      if (this.selected === automation.id) await this.traces.reload();
    } catch (err) {
      notify(`${automation.alias}: ${errorMessage(err)}`, "error");
    } finally {
      this.busy = null;
    }
  }

  private renderLastRun(a: Automation) {
    const run = a.last_run;
    if (!run || run.outcome !== "error") return nothing;
    const error = run.error ?? outcome("error");
    return html`<div class="bad-text small" data-last-run="error" title=${t("automations.last_failed_title", { time: fmtTime(run.started), error })}>
      <span class="badge bad">${t("automations.last_failed")}</span> ${error}
    </div>`;
  }

  private renderList(automations: Automation[]) {
    if (automations.length === 0) return html`<p class="muted">${t("automations.none")}</p>`;
    return html`<table class="data responsive">
      <thead>
        <tr>
          <th>${t("automations.col_automation")}</th><th>${t("automations.col_mode")}</th>
          <th>${t("automations.col_last_triggered")}</th><th>${t("automations.col_on")}</th><th></th>
        </tr>
      </thead>
      <tbody>
        ${automations.map(
          (a) => html`<tr
            data-automation-id=${a.id}
            data-last-outcome=${a.last_run?.outcome ?? ""}
            class=${this.selected === a.id ? "selected" : ""}
          >
            <td data-label=${t("automations.col_automation")} class="wrap">
              <a href="#/automations/${encodeURIComponent(a.id)}">${a.alias}</a>
              ${a.description ? html`<div class="muted small">${a.description}</div>` : nothing}
              ${this.renderLastRun(a)}
            </td>
            <td data-label=${t("automations.col_mode")}>${a.mode}${a.running ? html` <span class="badge busy">${t("automations.running")}</span>` : nothing}</td>
            <td data-label=${t("automations.col_last_triggered")}>${fmtTime(a.last_triggered)}</td>
            <td data-label=${t("automations.col_on")}>
              <label class="switch">
                <input type="checkbox" role="switch" .checked=${a.enabled}
                  ?disabled=${!session.canOperate || this.busy === a.id}
                  aria-label=${t("automations.enabled_label", { alias: a.alias })}
                  @change=${() => this.post(a, a.enabled ? "disable" : "enable")} />
                <span class="slider"></span>
              </label>
            </td>
            <td data-label="">
              ${session.canOperate
                ? html`<button class="small" data-action="run" ?disabled=${this.busy === a.id} @click=${() => this.post(a, "trigger")}>${t("automations.run")}</button>`
                : nothing}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  private renderTraces(traces: Trace[] | null) {
    if (traces === null) return nothing;
    if (traces.length === 0) return html`<p class="muted">${t("automations.no_runs")}</p>`;
    const sorted = [...traces].sort((a, b) => b.started - a.started);
    return html`${sorted.map(
      (run) => html`<details class="trace card" data-run-id=${run.run_id} data-outcome=${run.outcome}>
        <summary>
          <span class="badge ${OUTCOME_CLASS[run.outcome] ?? "ok"}">${outcome(run.outcome)}</span>
          ${fmtTime(run.started)} <span class="muted">${String(run.trigger.description ?? run.trigger.platform ?? "")}</span>
        </summary>
        ${run.error ? html`<p class="error-box">${run.error}</p>` : nothing}
        ${run.conditions.length
          ? html`<h4>${t("automations.conditions")}</h4><ul>${run.conditions.map((c) => html`<li><code>${JSON.stringify(c)}</code></li>`)}</ul>`
          : nothing}
        <h4>${t("automations.steps")}</h4>
        ${run.steps.length === 0
          ? html`<p class="muted">${t("automations.no_steps")}</p>`
          : html`<ol class="steps">
              ${run.steps.map(
                (s) => html`<li class=${s.error ? "bad-text" : ""} data-step=${s.path} data-step-failed=${s.error ? "true" : "false"}>
                  <code>${s.path}</code> ${s.kind} · ${fmtNumber(s.duration * 1000, 1, 1)} ms
                  ${s.error ? html` <span class="badge bad">${t("automations.step_failed")}</span><div>${s.error}</div>` : nothing}
                  ${s.result !== null && s.result !== undefined ? html`<div class="muted small">${JSON.stringify(s.result)}</div>` : nothing}
                </li>`,
              )}
            </ol>`}
      </details>`,
    )}`;
  }

  override render() {
    const selected = this.automations.value?.find((a) => a.id === this.selected);
    return html`
      <h1>${t("automations.title")}</h1>
      ${renderLoad(this.automations, (a) => this.renderList(a), t("automations.what"))}
      ${this.selected
        ? html`<section class="traces">
            <h2>${t("automations.traces", { alias: selected?.alias ?? this.selected })}</h2>
            ${renderLoad(this.traces, (tr) => this.renderTraces(tr), t("automations.traces_what"))}
          </section>`
        : nothing}
    `;
  }
}
