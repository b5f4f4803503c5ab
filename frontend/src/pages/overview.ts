// Overview: sites, charger counts by health, fleet uptime this month, charge success over the
// last 30 days, open alerts, worst ports, and the fleet's charts: power over the last day,
// energy per day, uptime per day and charge success per day.

import { html } from "lit";
import { customElement } from "lit/decorators.js";
import type { ChartConfiguration } from "chart.js";
import {
  api,
  query,
  type Alert,
  type ChargeSuccessReport,
  type FleetStatistics,
  type HistoryPoint,
  type Station,
  type UptimeDaily,
  type UptimeReport,
} from "../api.js";
import { LightElement } from "../base.js";
import { PALETTE, powerScales, targetLine, uptimeAxisMin } from "../components/chart.js";
import "../components/chart.js";
import { fmtNumber, t } from "../i18n.js";
import { stationHealth } from "../model.js";
import { session } from "../session.js";
import { EventsController, fmtDay, fmtMinutes, fmtPct, LiveController, Loader, num, renderLoad, toDate } from "../ui.js";

const SUCCESS_DAYS = 30;
const TREND_DAYS = 30;
const DAY_MS = 86_400_000;
const POWER_WINDOW_MS = DAY_MS;
// /api/history takes at most this many entities at once.
const MAX_POWER_ENTITIES = 100;

type History = Record<string, HistoryPoint[]>;

/** The fleet's power over a window: the sum of every port's last reported power, in kW. */
export function sumSteps(history: History, start: number, end: number): { x: number; y: number }[] {
  const changes: { at: number; id: string; kw: number }[] = [];
  for (const [id, points] of Object.entries(history)) {
    for (const point of points) {
      const value = num(point.state);
      const at = toDate(point.last_changed)?.getTime();
      if (value === null || at === undefined) continue;
      const unit = String(point.attributes?.unit_of_measurement ?? "W");
      changes.push({ at: Math.max(at, start), id, kw: unit === "kW" ? value : value / 1000 });
    }
  }
  changes.sort((a, b) => a.at - b.at);
  const current = new Map<string, number>();
  const points: { x: number; y: number }[] = [];
  for (const change of changes) {
    current.set(change.id, change.kw);
    const total = [...current.values()].reduce((sum, kw) => sum + kw, 0);
    if (points.length && points[points.length - 1].x === change.at) points[points.length - 1].y = total;
    else points.push({ x: change.at, y: total });
  }
  if (points.length) points.push({ x: end, y: points[points.length - 1].y });
  return points;
}

@customElement("ev-overview")
export class OverviewPage extends LightElement {
  private stations = new Loader(this, () => api.get<Station[]>("/api/chargers"));
  // This month so far, in the hub's time zone (the endpoint's default window).
  private uptime = new Loader(this, () => api.get<UptimeReport>("/api/uptime"));
  private alerts = new Loader(this, () => api.get<Alert[]>("/api/alerts?status=open"));
  // The fleet's charge attempts over the trailing 30 days (the report's overall figures).
  private success = new Loader(this, () => {
    const end = new Date();
    const start = new Date(end.getTime() - SUCCESS_DAYS * DAY_MS);
    return api.get<ChargeSuccessReport>(
      "/api/charge_success" + query({ start: start.toISOString(), end: end.toISOString(), group: "site", by: "month" }),
    );
  });
  // The charts: the fleet's power over the last day, energy and uptime and success per day.
  private power = new Loader(this, () => this.loadPower());
  private energy = new Loader(this, () => {
    const end = new Date();
    const start = new Date(end.getTime() - TREND_DAYS * DAY_MS);
    return api.get<FleetStatistics>("/api/statistics/fleet" + query({ period: "day", start: start.toISOString(), end: end.toISOString() }));
  });
  private uptimeDaily = new Loader(this, () => api.get<UptimeDaily>("/api/uptime/daily" + query({ days: TREND_DAYS })));
  private successDaily = new Loader(this, () => {
    const end = new Date();
    const start = new Date(end.getTime() - TREND_DAYS * DAY_MS);
    return api.get<ChargeSuccessReport>(
      "/api/charge_success" + query({ start: start.toISOString(), end: end.toISOString(), group: "site", by: "day" }),
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
    new EventsController(this, ["uptime_updated", "uptime_outage", "uptime_exclusion"], () => void this.uptimeDaily.reload(), 10_000);
    new EventsController(this, ["device_registry_updated"], () => void this.stations.reload(), 1000);
    // A port's power entity appears when its charger first reports power: chart it then.
    new EventsController(
      this,
      ["entity_registry_updated", "device_registry_updated"],
      () => void this.stations.reload().then(() => this.power.reload()),
      2000,
    );
    // A session ending or a port changing status may change the figures (as the success page).
    new EventsController(this, ["charger_event"], () => {
      void this.success.reload();
      void this.successDaily.reload();
      void this.energy.reload();
    }, 30_000);
  }

  /** The ports' power entities and their history over the last day. */
  private async loadPower(): Promise<{ ids: string[]; history: History }> {
    const stations = this.stations.value ?? (await api.get<Station[]>("/api/chargers"));
    const ids = stations
      .flatMap((s) => s.ports.map((p) => p.entities?.power))
      .filter((id): id is string => Boolean(id))
      .slice(0, MAX_POWER_ENTITIES);
    if (ids.length === 0) return { ids, history: {} };
    const end = new Date();
    const start = new Date(end.getTime() - POWER_WINDOW_MS);
    const history = await api.get<History>(
      "/api/history" + query({ entity_id: ids.join(","), start: start.toISOString(), end: end.toISOString() }),
    );
    return { ids, history };
  }

  private renderCounts(stations: Station[]) {
    const counts = { online: 0, offline: 0, faulted: 0, pending: 0 };
    for (const station of stations) counts[stationHealth(station)] += 1;
    const sites = new Map<string, Station[]>();
    const sitesKnown = stations.some((s) => s.site);
    for (const station of stations) {
      const site = station.site ?? t("overview.no_site");
      sites.set(site, [...(sites.get(site) ?? []), station]);
    }
    return html`
      <div class="tiles">
        <a class="tile ok" href="#/chargers?filter=online" data-count="online">
          <span class="tile-value">${counts.online}</span><span class="tile-label">${t("overview.online")}</span>
        </a>
        <a class="tile off" href="#/chargers?filter=offline" data-count="offline">
          <span class="tile-value">${counts.offline}</span><span class="tile-label">${t("overview.offline")}</span>
        </a>
        <a class="tile bad" href="#/chargers?filter=faulted" data-count="faulted">
          <span class="tile-value">${counts.faulted}</span><span class="tile-label">${t("overview.faulted")}</span>
        </a>
        ${this.renderUptimeTile()} ${this.renderSuccessTile()} ${this.renderAlertTile()}
      </div>
      <section class="card">
        <h2>${t("overview.sites")}</h2>
        ${stations.length === 0
          ? html`<p class="muted">${t("overview.no_chargers")} <a href="#/pending">${t("overview.pending_link")}</a></p>`
          : sitesKnown
            ? html`<ul class="sites">
                ${[...sites].map(([site, list]) => {
                  const online = list.filter((s) => stationHealth(s) === "online").length;
                  return html`<li data-site=${site}><strong>${site}</strong>
                    <span class="muted">${t("overview.site_counts", { count: list.length, online })}</span></li>`;
                })}
              </ul>`
            : html`<p class="muted">${t("overview.no_sites", { count: stations.length })}</p>`}
      </section>
    `;
  }

  private renderUptimeTile() {
    const state = this.uptime.state;
    const pct = state.kind === "ready" ? state.value.fleet_uptime_pct : null;
    const value = state.kind === "ready" ? fmtPct(pct) : state.kind === "loading" ? "…" : "n/a";
    const cls = pct === null ? "" : pct < (state.kind === "ready" ? state.value.target_pct : 97) ? "bad" : "ok";
    const title = state.kind === "not_available" ? t("overview.uptime_na") : "";
    const cec = state.kind === "ready" ? state.value.fleet_cec_uptime_pct ?? null : null;
    return html`<a class="tile ${cls}" href="#/reports" data-count="uptime" title=${title}>
      <span class="tile-value">${value}</span><span class="tile-label">${t("overview.fleet_uptime")}</span>
      ${state.kind === "ready" ? html`<span class="tile-label" data-count="cec-uptime">CEC ${fmtPct(cec)}</span>` : null}
    </a>`;
  }

  private renderSuccessTile() {
    const state = this.success.state;
    const all = state.kind === "ready" ? state.value.overall : null;
    const rate = successRate(all);
    const value = state.kind === "ready" ? fmtPct(rate, 1) : state.kind === "loading" ? "…" : "n/a";
    const title = state.kind === "not_available" ? t("overview.success_na") : "";
    const judged = all ? all.successful + all.failed : 0;
    return html`<a class="tile" href="#/success" data-count="charge-success" title=${title}>
      <span class="tile-value">${value}</span><span class="tile-label">${t("overview.success_days", { days: SUCCESS_DAYS })}</span>
      ${all
        ? html`<span class="tile-label" data-count="charge-attempts">${judged === 0
            ? t("overview.no_judged")
            : t("overview.n_of_attempts", { n: all.successful, count: judged })}</span>`
        : null}
    </a>`;
  }

  private renderAlertTile() {
    const state = this.alerts.state;
    const value = state.kind === "ready" ? String(state.value.length) : state.kind === "loading" ? "…" : "n/a";
    const cls = state.kind === "ready" && state.value.length > 0 ? "warn" : "";
    return html`<a class="tile ${cls}" href="#/alerts" data-count="alerts">
      <span class="tile-value">${value}</span><span class="tile-label">${t("overview.open_alerts")}</span>
    </a>`;
  }

  private renderWorst(report: UptimeReport) {
    const ports = report.ports
      .filter((p) => p.uptime_pct !== null)
      .sort((a, b) => (a.uptime_pct ?? 100) - (b.uptime_pct ?? 100) || b.outage_minutes - a.outage_minutes)
      .slice(0, 10);
    if (ports.length === 0) return html`<p class="muted">${t("overview.no_uptime")}</p>`;
    const cols = {
      port: t("overview.col_port"),
      station: t("overview.col_station"),
      nevi: t("overview.col_uptime_nevi"),
      outage: t("overview.col_outage"),
    };
    return html`<table class="data responsive" data-table="worst-ports">
      <thead><tr><th>${cols.port}</th><th>${cols.station}</th><th class="num">${cols.nevi}</th><th class="num">CEC</th><th class="num">${cols.outage}</th></tr></thead>
      <tbody>
        ${ports.map(
          (p) => html`<tr data-port-id=${p.port_id} class=${(p.uptime_pct ?? 100) < report.target_pct ? "below" : ""}>
            <td data-label=${cols.port}><a href="#/chargers/${encodeURIComponent(p.station_id)}">${p.connector !== null ? html`<span class="connector-no">${p.connector}</span> ` : null}${p.name}</a></td>
            <td data-label=${cols.station}>${p.station_name ?? "—"}</td>
            <td class="num" data-label=${cols.nevi} data-uptime>${fmtPct(p.uptime_pct)}</td>
            <td class="num" data-label="CEC" data-cec-uptime>${fmtPct(p.cec_uptime_pct ?? null)}</td>
            <td class="num" data-label=${cols.outage} data-outage>${fmtMinutes(p.outage_minutes)}</td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  private renderAlerts(alerts: Alert[]) {
    if (alerts.length === 0) return html`<p class="muted">${t("overview.no_alerts")}</p>`;
    return html`<ul class="alert-list">
      ${alerts.slice(0, 8).map(
        (a) => html`<li class="sev-${a.severity}"><span class="badge sev">${a.severity}</span> ${a.title}</li>`,
      )}
    </ul>
    <p><a href="#/alerts">${t("overview.all_alerts")}</a></p>`;
  }

  // ---- the fleet's charts ----

  private powerChart(ids: string[], history: History): ChartConfiguration {
    const end = Date.now();
    const start = end - POWER_WINDOW_MS;
    const points = sumSteps(history, start, end);
    // The live values, for the last stretch up to now (the history may not have them yet).
    const live = ids.map((id) => num(session.entities.get(id)?.s)).filter((w): w is number => w !== null);
    if (live.length) {
      const now = { x: end, y: live.reduce((a, b) => a + b, 0) / 1000 };
      if (points.length) points[points.length - 1] = now;
      else points.push(now);
    }
    const last = points.length - 1;
    return {
      type: "line",
      data: {
        datasets: [
          {
            label: t("overview.chart_power_label"),
            data: points,
            borderColor: PALETTE[0],
            backgroundColor: PALETTE[0] + "33",
            stepped: true as const,
            // The value now is marked, so it shows before any history has accrued.
            pointRadius: points.map((_, i) => (i === last ? 3 : 0)),
            fill: true,
          },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        parsing: false,
        scales: powerScales(start, end),
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: (item) => `${fmtNumber(item.parsed.y ?? 0, 2, 2)} kW` } },
        },
      },
    };
  }

  private energyChart(answer: FleetStatistics): ChartConfiguration {
    return {
      type: "bar",
      data: {
        labels: answer.rows.map((row) => fmtDay(row.start, answer.time_zone)),
        datasets: [{ label: t("overview.chart_energy_label"), data: answer.rows.map((r) => r.energy_kwh), backgroundColor: PALETTE[1] }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { beginAtZero: true, title: { display: true, text: "kWh" } } },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: (item) => `${fmtNumber(Number(item.raw), 2, 2)} kWh` } },
        },
      },
    };
  }

  private uptimeChart(answer: UptimeDaily): ChartConfiguration {
    const labels = answer.rows.map((row) => fmtDay(row.start, answer.time_zone));
    const nevi = answer.rows.map((row) => row.uptime_pct);
    const cec = answer.rows.map((row) => row.cec_uptime_pct);
    const known = [...nevi, ...cec].filter((v): v is number => v !== null);
    const low = uptimeAxisMin(answer.target_pct, known);
    return {
      type: "line",
      data: {
        labels,
        datasets: [
          { label: "NEVI", data: nevi, borderColor: PALETTE[0], backgroundColor: PALETTE[0], pointRadius: 2, spanGaps: true },
          { label: "CEC", data: cec, borderColor: PALETTE[5], backgroundColor: PALETTE[5], pointRadius: 2, spanGaps: true },
          targetLine(t("overview.target", { pct: answer.target_pct }), labels, answer.target_pct),
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { min: low, max: 100, title: { display: true, text: "%" } } },
        plugins: { tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${fmtPct(item.raw as number | null)}` } } },
      },
    } as ChartConfiguration;
  }

  private successChart(answer: ChargeSuccessReport): ChartConfiguration {
    // One row per site and day: add the sites up per day.
    const days = new Map<string, { start: string; successful: number; failed: number }>();
    for (const row of answer.rows) {
      const day = days.get(row.period) ?? { start: row.start, successful: 0, failed: 0 };
      day.successful += row.successful;
      day.failed += row.failed;
      days.set(row.period, day);
    }
    const ordered = [...days.values()].sort((a, b) => a.start.localeCompare(b.start));
    const rates = ordered.map((d) => (d.successful + d.failed > 0 ? (100 * d.successful) / (d.successful + d.failed) : null));
    return {
      type: "line",
      data: {
        labels: ordered.map((d) => fmtDay(d.start, answer.time_zone)),
        datasets: [
          {
            label: t("overview.chart_success_label"),
            data: rates,
            borderColor: PALETTE[2],
            backgroundColor: PALETTE[2],
            pointRadius: 3,
            spanGaps: true,
          },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { min: 0, max: 100, title: { display: true, text: "%" } } },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: (item) => fmtPct(item.raw as number | null, 1) } },
        },
      },
    } as ChartConfiguration;
  }

  private renderCharts() {
    return html`<div class="charts-grid" data-section="fleet-charts">
      <section class="card" data-chart="power">
        <h2>${t("overview.chart_power")}</h2>
        ${renderLoad(this.power, ({ ids, history }) =>
          ids.length === 0
            ? html`<p class="muted">${t("overview.no_power")}</p>`
            : html`<ev-chart label=${t("overview.chart_power")} .config=${this.powerChart(ids, history)}></ev-chart>`, t("station.history"))}
      </section>
      <section class="card" data-chart="energy">
        <h2>${t("overview.chart_energy", { days: TREND_DAYS })}</h2>
        ${renderLoad(this.energy, (a) => html`<ev-chart label=${t("overview.chart_energy", { days: TREND_DAYS })} .config=${this.energyChart(a)}></ev-chart>
          <p class="muted small" data-fact="fleet-energy">${t("overview.energy_total", { kwh: fmtNumber(a.energy_kwh, 1, 1), count: a.sessions })}</p>`, t("overview.chart_energy", { days: TREND_DAYS }))}
      </section>
      <section class="card" data-chart="uptime">
        <h2>${t("overview.chart_uptime", { days: TREND_DAYS })}</h2>
        ${renderLoad(this.uptimeDaily, (a) => html`<ev-chart label=${t("overview.chart_uptime", { days: TREND_DAYS })} .config=${this.uptimeChart(a)}></ev-chart>`, t("overview.chart_uptime", { days: TREND_DAYS }))}
      </section>
      <section class="card" data-chart="success">
        <h2>${t("overview.chart_success", { days: TREND_DAYS })}</h2>
        ${renderLoad(this.successDaily, (a) =>
          a.rows.length === 0
            ? html`<p class="muted">${t("overview.no_judged")}</p>`
            : html`<ev-chart label=${t("overview.chart_success", { days: TREND_DAYS })} .config=${this.successChart(a)}></ev-chart>`, t("overview.chart_success", { days: TREND_DAYS }))}
      </section>
    </div>`;
  }

  override render() {
    return html`
      <h1>${t("nav.overview")}</h1>
      ${renderLoad(this.stations, (s) => this.renderCounts(s), t("overview.charger_list"))}
      ${this.renderCharts()}
      <div class="grid-2">
        <section class="card">
          <h2>${t("overview.worst_ports")}</h2>
          ${renderLoad(this.uptime, (r) => this.renderWorst(r), t("overview.uptime"))}
        </section>
        <section class="card">
          <h2>${t("overview.open_alerts_title")}</h2>
          ${renderLoad(this.alerts, (a) => this.renderAlerts(a), t("nav.alerts"))}
        </section>
      </div>
    `;
  }
}

/** The attempt success rate in percent; null (shown "—") with no judged attempt. */
function successRate(figures: { success_rate: number | null; successful: number; failed: number } | null): number | null {
  if (!figures || figures.successful + figures.failed === 0) return null;
  const rate = figures.success_rate;
  return rate === null || !Number.isFinite(rate) ? null : rate * 100;
}
