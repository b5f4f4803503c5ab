// Overview: sites, charger counts by health, fleet uptime this month, charge success over the
// last 30 days, open alerts, worst ports.

import { html } from "lit";
import { customElement } from "lit/decorators.js";
import { api, query, type Alert, type ChargeSuccessReport, type Station, type UptimeReport } from "../api.js";
import { LightElement } from "../base.js";
import { stationHealth } from "../model.js";
import { EventsController, fmtPct, LiveController, Loader, renderLoad } from "../ui.js";

@customElement("ev-overview")
export class OverviewPage extends LightElement {
  private stations = new Loader(this, () => api.get<Station[]>("/api/chargers"));
  // This month so far, in the hub's time zone (the endpoint's default window).
  private uptime = new Loader(this, () => api.get<UptimeReport>("/api/uptime"));
  private alerts = new Loader(this, () => api.get<Alert[]>("/api/alerts?status=open"));
  // The fleet's charge attempts over the trailing 30 days (the report's overall figures).
  private success = new Loader(this, () => {
    const end = new Date();
    const start = new Date(end.getTime() - SUCCESS_DAYS * 86_400_000);
    return api.get<ChargeSuccessReport>(
      "/api/charge_success" + query({ start: start.toISOString(), end: end.toISOString(), group: "site", by: "month" }),
    );
  });

  constructor() {
    super();
    new LiveController(this);
    new EventsController(this, ["alert_raised", "alert_acknowledged", "alert_resolved"], () =>
      void this.alerts.reload(),
    );
    // Figures move when an outage starts or ends, or a sensor's percentage changes.
    new EventsController(this, ["uptime_updated", "uptime_outage"], () => void this.uptime.reload(), 1000);
    new EventsController(this, ["device_registry_updated"], () => void this.stations.reload(), 1000);
    // A session ending or a port changing status may change the figures (as the success page).
    new EventsController(this, ["charger_event"], () => void this.success.reload(), 30_000);
  }

  private renderCounts(stations: Station[]) {
    const counts = { online: 0, offline: 0, faulted: 0, pending: 0 };
    for (const station of stations) counts[stationHealth(station)] += 1;
    const sites = new Map<string, Station[]>();
    const sitesKnown = stations.some((s) => s.site);
    for (const station of stations) {
      const site = station.site ?? "No site";
      sites.set(site, [...(sites.get(site) ?? []), station]);
    }
    return html`
      <div class="tiles">
        <a class="tile ok" href="#/chargers?filter=online" data-count="online">
          <span class="tile-value">${counts.online}</span><span class="tile-label">online</span>
        </a>
        <a class="tile off" href="#/chargers?filter=offline" data-count="offline">
          <span class="tile-value">${counts.offline}</span><span class="tile-label">offline</span>
        </a>
        <a class="tile bad" href="#/chargers?filter=faulted" data-count="faulted">
          <span class="tile-value">${counts.faulted}</span><span class="tile-label">faulted</span>
        </a>
        ${this.renderUptimeTile()} ${this.renderSuccessTile()} ${this.renderAlertTile()}
      </div>
      <section class="card">
        <h2>Sites</h2>
        ${stations.length === 0
          ? html`<p class="muted">No chargers yet. Connect one, or approve a <a href="#/pending">pending charger</a>.</p>`
          : sitesKnown
            ? html`<ul class="sites">
                ${[...sites].map(([site, list]) => {
                  const online = list.filter((s) => stationHealth(s) === "online").length;
                  return html`<li data-site=${site}><strong>${site}</strong>
                    <span class="muted">${list.length} charger${list.length === 1 ? "" : "s"}, ${online} online</span></li>`;
                })}
              </ul>`
            : html`<p class="muted">${stations.length} charger${stations.length === 1 ? "" : "s"}; the hub reports no sites for them.</p>`}
      </section>
    `;
  }

  private renderUptimeTile() {
    const state = this.uptime.state;
    const pct = state.kind === "ready" ? state.value.fleet_uptime_pct : null;
    const value = state.kind === "ready" ? fmtPct(pct) : state.kind === "loading" ? "…" : "n/a";
    const cls = pct === null ? "" : pct < (state.kind === "ready" ? state.value.target_pct : 97) ? "bad" : "ok";
    const title = state.kind === "not_available" ? "Uptime is not available on this hub yet" : "";
    const cec = state.kind === "ready" ? state.value.fleet_cec_uptime_pct ?? null : null;
    return html`<a class="tile ${cls}" href="#/reports" data-count="uptime" title=${title}>
      <span class="tile-value">${value}</span><span class="tile-label">fleet uptime this month (NEVI)</span>
      ${state.kind === "ready" ? html`<span class="tile-label" data-count="cec-uptime">CEC ${fmtPct(cec)}</span>` : null}
    </a>`;
  }

  private renderSuccessTile() {
    const state = this.success.state;
    const all = state.kind === "ready" ? state.value.overall : null;
    const rate = successRate(all);
    const value = state.kind === "ready" ? fmtPct(rate, 1) : state.kind === "loading" ? "…" : "n/a";
    const title = state.kind === "not_available" ? "Charge success is not available on this hub yet" : "";
    const judged = all ? all.successful + all.failed : 0;
    return html`<a class="tile" href="#/success" data-count="charge-success" title=${title}>
      <span class="tile-value">${value}</span><span class="tile-label">charge success, last ${SUCCESS_DAYS} days</span>
      ${all
        ? html`<span class="tile-label" data-count="charge-attempts">${judged === 0
            ? "no judged attempts"
            : `${all.successful} of ${judged} attempt${judged === 1 ? "" : "s"}`}</span>`
        : null}
    </a>`;
  }

  private renderAlertTile() {
    const state = this.alerts.state;
    const value = state.kind === "ready" ? String(state.value.length) : state.kind === "loading" ? "…" : "n/a";
    const cls = state.kind === "ready" && state.value.length > 0 ? "warn" : "";
    return html`<a class="tile ${cls}" href="#/alerts" data-count="alerts">
      <span class="tile-value">${value}</span><span class="tile-label">open alerts</span>
    </a>`;
  }

  private renderWorst(report: UptimeReport) {
    const ports = report.ports
      .filter((p) => p.uptime_pct !== null)
      .sort((a, b) => (a.uptime_pct ?? 100) - (b.uptime_pct ?? 100) || b.outage_minutes - a.outage_minutes)
      .slice(0, 10);
    if (ports.length === 0) return html`<p class="muted">No uptime measured yet this month.</p>`;
    return html`<div class="scroll-x"><table class="data">
      <thead><tr><th>Port</th><th>Station</th><th class="num">Uptime (NEVI)</th><th class="num">CEC</th><th class="num">Outage</th></tr></thead>
      <tbody>
        ${ports.map(
          (p) => html`<tr data-port-id=${p.port_id} class=${(p.uptime_pct ?? 100) < report.target_pct ? "below" : ""}>
            <td><a href="#/chargers/${encodeURIComponent(p.station_id)}">${p.name}</a></td>
            <td>${p.station_name ?? "—"}</td>
            <td class="num" data-uptime>${fmtPct(p.uptime_pct)}</td>
            <td class="num" data-cec-uptime>${fmtPct(p.cec_uptime_pct ?? null)}</td>
            <td class="num">${Math.round(p.outage_minutes)} min</td>
          </tr>`,
        )}
      </tbody>
    </table></div>`;
  }

  private renderAlerts(alerts: Alert[]) {
    if (alerts.length === 0) return html`<p class="muted">No open alerts.</p>`;
    return html`<ul class="alert-list">
      ${alerts.slice(0, 8).map(
        (a) => html`<li class="sev-${a.severity}"><span class="badge sev">${a.severity}</span> ${a.title}</li>`,
      )}
    </ul>
    <p><a href="#/alerts">All alerts</a></p>`;
  }

  override render() {
    return html`
      <h1>Overview</h1>
      ${renderLoad(this.stations, (s) => this.renderCounts(s), "The charger list")}
      <div class="grid-2">
        <section class="card">
          <h2>Worst ports this month</h2>
          ${renderLoad(this.uptime, (r) => this.renderWorst(r), "Uptime")}
        </section>
        <section class="card">
          <h2>Open alerts</h2>
          ${renderLoad(this.alerts, (a) => this.renderAlerts(a), "Alerts")}
        </section>
      </div>
    `;
  }
}

const SUCCESS_DAYS = 30;

/** The attempt success rate in percent; null (shown "—") with no judged attempt. */
function successRate(figures: { success_rate: number | null; successful: number; failed: number } | null): number | null {
  if (!figures || figures.successful + figures.failed === 0) return null;
  const rate = figures.success_rate;
  return rate === null || !Number.isFinite(rate) ? null : rate * 100;
}
