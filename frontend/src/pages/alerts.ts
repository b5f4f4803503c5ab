// Alerts by state, with acknowledge and resolve for operators; who did it by name.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import { api, type Alert } from "../api.js";
import { LightElement } from "../base.js";
import { t, type MessageKey } from "../i18n.js";
import { session } from "../session.js";
import { confirmAction, errorMessage, EventsController, fmtTime, Loader, notify, renderLoad } from "../ui.js";

const TABS = ["open", "acknowledged", "resolved"] as const;
type Tab = (typeof TABS)[number];

const TAB_KEYS: Record<Tab, MessageKey> = {
  open: "alerts.tab_open",
  acknowledged: "alerts.tab_acknowledged",
  resolved: "alerts.tab_resolved",
};

/** Who acknowledged or resolved an alert: the username, "an automation" for none. */
function byName(name: string | null | undefined, id: string | null): string {
  return name ?? id ?? t("alerts.by_automation");
}

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
    const verb = action === "acknowledge" ? t("alerts.acknowledge") : t("alerts.resolve");
    const title = action === "acknowledge" ? t("alerts.acknowledge_title") : t("alerts.resolve_title");
    if (!(await confirmAction(title, t("alerts.confirm", { verb, title: alert.title }), verb))) return;
    this.busy = alert.id;
    try {
      await api.post(`/api/alerts/${encodeURIComponent(alert.id)}/${action}`, {});
      notify(action === "acknowledge" ? t("alerts.acknowledged", { title: alert.title }) : t("alerts.resolved", { title: alert.title }));
      await this.alerts.reload();
    } catch (err) {
      notify(t("alerts.failed", { verb, reason: errorMessage(err) }), "error");
    } finally {
      this.busy = null;
    }
  }

  private renderList(alerts: Alert[]) {
    if (alerts.length === 0) return html`<p class="muted">${t("alerts.none", { state: t(TAB_KEYS[this.tab]) })}</p>`;
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
            ${t("alerts.raised", { raised: fmtTime(a.raised_at), seen: fmtTime(a.last_seen_at), source: a.source })}
            ${a.station_id ? html` · <a href="#/chargers/${encodeURIComponent(a.station_id)}">${t("alerts.station")}</a>` : null}
            ${a.acknowledged_at
              ? html`<br /><span data-acknowledged-by>${t("alerts.acknowledged_by", { time: fmtTime(a.acknowledged_at), name: byName(a.acknowledged_by_name, a.acknowledged_by) })}</span>`
              : null}
            ${a.resolved_at
              ? html`<br /><span data-resolved-by>${a.resolution === "auto" && !a.resolved_by
                  ? t("alerts.resolved_auto", { time: fmtTime(a.resolved_at) })
                  : t("alerts.resolved_by", { time: fmtTime(a.resolved_at), name: byName(a.resolved_by_name, a.resolved_by) })}</span>`
              : null}
          </p>
          ${session.canOperate && a.state !== "resolved"
            ? html`<div class="button-row">
                ${a.state === "open"
                  ? html`<button data-action="acknowledge" ?disabled=${this.busy === a.id} @click=${() => this.change(a, "acknowledge")}>${t("alerts.acknowledge")}</button>`
                  : null}
                <button data-action="resolve" ?disabled=${this.busy === a.id} @click=${() => this.change(a, "resolve")}>${t("alerts.resolve")}</button>
              </div>`
            : null}
        </li>`,
      )}
    </ul>`;
  }

  override render() {
    return html`
      <h1>${t("nav.alerts")}</h1>
      <div class="segmented" role="tablist">
        ${TABS.map(
          (tab) => html`<button role="tab" aria-selected=${this.tab === tab ? "true" : "false"} class=${this.tab === tab ? "active" : ""}
            data-tab=${tab} @click=${() => this.select(tab)}>${t(TAB_KEYS[tab])}</button>`,
        )}
      </div>
      ${renderLoad(this.alerts, (a) => this.renderList(a), t("nav.alerts"))}
    `;
  }
}
