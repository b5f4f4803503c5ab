// Alerts by state, with acknowledge and resolve for operators.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import { api, type Alert } from "../api.js";
import { LightElement } from "../base.js";
import { session } from "../session.js";
import { confirmAction, errorMessage, EventsController, fmtTime, Loader, notify, renderLoad } from "../ui.js";

const TABS = ["open", "acknowledged", "resolved"] as const;
type Tab = (typeof TABS)[number];

@customElement("ev-alerts")
export class AlertsPage extends LightElement {
  @state() private tab: Tab = "open";
  @state() private busy: string | null = null;
  private alerts = new Loader(this, () => api.get<Alert[]>(`/api/alerts?status=${this.tab}`));

  constructor() {
    super();
    new EventsController(
      this,
      ["alert_raised", "alert_updated", "alert_acknowledged", "alert_resolved"],
      () => void this.alerts.reload(),
    );
  }

  private select(tab: Tab): void {
    this.tab = tab;
    this.alerts.state = { kind: "loading" };
    void this.alerts.reload();
  }

  private async change(alert: Alert, action: "acknowledge" | "resolve"): Promise<void> {
    const verb = action === "acknowledge" ? "Acknowledge" : "Resolve";
    if (!(await confirmAction(`${verb} alert`, `${verb} “${alert.title}”?`, verb))) return;
    this.busy = alert.id;
    try {
      await api.post(`/api/alerts/${encodeURIComponent(alert.id)}/${action}`, {});
      notify(`${verb}d: ${alert.title}`);
      await this.alerts.reload();
    } catch (err) {
      notify(`${verb} failed: ${errorMessage(err)}`, "error");
    } finally {
      this.busy = null;
    }
  }

  private renderList(alerts: Alert[]) {
    if (alerts.length === 0) return html`<p class="muted">No ${this.tab} alerts.</p>`;
    const sorted = [...alerts].sort((a, b) => b.last_seen_at - a.last_seen_at);
    return html`<ul class="cards alerts">
      ${sorted.map(
        (a) => html`<li class="card alert sev-${a.severity}" data-alert-id=${a.id}>
          <header>
            <span class="badge sev">${a.severity}</span>
            <strong>${a.title}</strong>
            ${a.count > 1 ? html`<span class="muted">×${a.count}</span>` : null}
          </header>
          <p>${a.message}</p>
          <p class="muted small">
            Raised ${fmtTime(a.raised_at)} · last seen ${fmtTime(a.last_seen_at)} · ${a.source}
            ${a.station_id ? html` · <a href="#/chargers/${encodeURIComponent(a.station_id)}">station</a>` : null}
            ${a.acknowledged_at ? html`<br />Acknowledged ${fmtTime(a.acknowledged_at)} by ${a.acknowledged_by ?? "—"}` : null}
            ${a.resolved_at ? html`<br />Resolved ${fmtTime(a.resolved_at)} by ${a.resolved_by ?? "—"} ${a.resolution ?? ""}` : null}
          </p>
          ${session.canOperate && a.state !== "resolved"
            ? html`<div class="button-row">
                ${a.state === "open"
                  ? html`<button data-action="acknowledge" ?disabled=${this.busy === a.id} @click=${() => this.change(a, "acknowledge")}>Acknowledge</button>`
                  : null}
                <button data-action="resolve" ?disabled=${this.busy === a.id} @click=${() => this.change(a, "resolve")}>Resolve</button>
              </div>`
            : null}
        </li>`,
      )}
    </ul>`;
  }

  override render() {
    return html`
      <h1>Alerts</h1>
      <div class="segmented" role="tablist">
        ${TABS.map(
          (t) => html`<button role="tab" aria-selected=${this.tab === t ? "true" : "false"} class=${this.tab === t ? "active" : ""}
            data-tab=${t} @click=${() => this.select(t)}>${t}</button>`,
        )}
      </div>
      ${renderLoad(this.alerts, (a) => this.renderList(a), "Alerts")}
    `;
  }
}
