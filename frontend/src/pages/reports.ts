// Reports: monthly uptime per port against the NEVI 97 % line (CEC's figure beside it), the
// month table, the CSV downloads (evhub's, EV-ChART's modules per quarter, CEC's per half-year),
// and usage charts from the recorder's statistics.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import type { ChartConfiguration } from "chart.js";
import { api, ApiError, query, type MonthlyRow, type MonthlyUptime, type Station, type Statistics, type StatisticsRow } from "../api.js";
import { LightElement } from "../base.js";
import { PALETTE, targetLine, uptimeAxisMin } from "../components/chart.js";
import "../components/chart.js";
import "../components/exclusions.js";
import type { ExclusionTarget } from "../components/exclusions.js";
import { fmtDateTime, fmtNumber, t, type MessageKey } from "../i18n.js";
import { errorMessage, EventsController, fmtDay, fmtMinutes, fmtPct, Loader, notify, renderLoad } from "../ui.js";

export const NEVI_TARGET = 97;
export const CEC_TARGET = 97;

/** The quarter ("2026Q3") and half-year ("2026H1") of a "YYYY-MM" month. */
export function quarterOf(month: string): string {
  const [year, m] = month.split("-").map(Number);
  return `${year}Q${Math.floor((m - 1) / 3) + 1}`;
}

export function halfOf(month: string): string {
  const [year, m] = month.split("-").map(Number);
  return `${year}H${m <= 6 ? 1 : 2}`;
}

const EVCHART_EXPORTS: { module: string; label: MessageKey; file: string }[] = [
  { module: "2", label: "reports.evchart2", file: "module2-sessions" },
  { module: "3", label: "reports.evchart3", file: "module3-uptime" },
  { module: "4", label: "reports.evchart4", file: "module4-outages" },
  { module: "outages", label: "reports.export_outages", file: "outages" },
  { module: "uptime", label: "reports.export_uptime", file: "uptime" },
];

/** The short name of month 1-12 in the interface's language ("Jan", "Mär"). */
function monthShort(month: number): string {
  return fmtDateTime(new Date(Date.UTC(2024, month - 1, 15)), { month: "short" }, "UTC");
}

/** A month and year in the interface's language ("Mar 2026", "März 2026"). */
function monthLong(year: number, month: number): string {
  return fmtDateTime(new Date(Date.UTC(year, month - 1, 15)), { month: "short", year: "numeric" }, "UTC");
}

const MONTH_NUMBERS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

/** Month number 1-12 of a "YYYY-MM" label. */
export function monthOf(label: string): number | null {
  const match = /^\d{4}-(\d{2})$/.exec(label);
  return match ? Number(match[1]) : null;
}

const METRICS: { key: keyof StatisticsRow; label: MessageKey; unit: string }[] = [
  { key: "energy_kwh", label: "reports.m_energy", unit: "kWh" },
  { key: "sessions", label: "reports.m_sessions", unit: "" },
  { key: "occupied_percent", label: "reports.m_occupied", unit: "%" },
  { key: "charging_percent", label: "reports.m_charging", unit: "%" },
  { key: "peak_power_kw", label: "reports.m_peak", unit: "kW" },
];

/** This month ("YYYY-MM") in a time zone, or null if the browser does not know the zone. */
export function monthIn(timeZone: string, at: Date = new Date()): string | null {
  try {
    const parts = new Intl.DateTimeFormat("en-US", { timeZone, year: "numeric", month: "2-digit" }).formatToParts(at);
    const part = (type: string) => parts.find((p) => p.type === type)?.value;
    return `${part("year")}-${part("month")}`;
  } catch {
    return null;
  }
}


@customElement("ev-reports")
export class ReportsPage extends LightElement {
  @state() private year = new Date().getFullYear();
  @state() private month = new Date().getMonth() + 1;
  @state() private stationId = "";
  @state() private metric: keyof StatisticsRow = "energy_kwh";
  @state() private quarter = quarterOf(`${new Date().getFullYear()}-${String(new Date().getMonth() + 1).padStart(2, "0")}`);
  @state() private half = halfOf(`${new Date().getFullYear()}-${String(new Date().getMonth() + 1).padStart(2, "0")}`);

  private monthly = new Loader(this, () => api.get<MonthlyUptime>(`/api/uptime/monthly?year=${this.year}`));
  private stations = new Loader(this, () => api.get<Station[]>("/api/chargers"));
  // Until the user picks a month, the page follows the hub's current month (its zone).
  private monthPicked = false;

  private statistics = new Loader<Statistics | null>(this, async () => {
    const stations = this.stations.value ?? (await api.get<Station[]>("/api/chargers"));
    const station = this.stationId || stations[0]?.device_id || "";
    if (!station) return null;
    const load = () =>
      api.get<Statistics>("/api/statistics" + query({ device_id: station, period: "day", month: this.monthValue }));
    const answer = await load();
    return !this.monthPicked && this.followHubMonth(answer.summary.time_zone) ? load() : answer;
  });

  constructor() {
    super();
    new EventsController(this, ["uptime_updated"], () => void this.monthly.reload(), 5000);
  }

  private get monthValue(): string {
    return `${this.year}-${String(this.month).padStart(2, "0")}`;
  }

  /** Show the hub's current month, not the browser's; true if that moved the page. */
  private followHubMonth(timeZone: string): boolean {
    const current = monthIn(timeZone);
    if (current === null || current === this.monthValue) return false;
    const [year, month] = current.split("-").map(Number);
    const yearChanged = year !== this.year;
    this.year = year;
    this.month = month;
    if (yearChanged) void this.monthly.reload();
    return true;
  }

  private setMonth(value: string): void {
    const [year, month] = value.split("-").map(Number);
    if (!year || !month) return;
    this.monthPicked = true;
    this.quarter = quarterOf(value);
    this.half = halfOf(value);
    const yearChanged = year !== this.year;
    this.year = year;
    this.month = month;
    if (yearChanged) void this.monthly.reload();
    void this.statistics.reload();
  }

  /** Fetch the CSV first, so a missing endpoint or an error is a message, not a bad file. */
  private async download(url: string, filename: string): Promise<void> {
    try {
      const text = await api.get<string>(url);
      const blob = new Blob([text], { type: "text/csv" });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = filename;
      document.body.append(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    } catch (err) {
      if (err instanceof ApiError && err.notAvailable) notify(t("reports.not_available"), "error");
      else notify(t("reports.download_failed", { reason: errorMessage(err) }), "error");
    }
  }

  private uptimeChart(rows: MonthlyRow[], target: number): ChartConfiguration {
    const labels = rows.map((r) => r.name);
    const values = rows.map((r) => r.uptime_pct as number);
    return {
      type: "bar",
      data: {
        labels,
        datasets: [
          {
            type: "bar",
            label: t("reports.uptime_pct"),
            data: values,
            backgroundColor: values.map((v) => (v < target ? "#dc2626" : "#16a34a")),
          },
          { type: "line", ...targetLine(`NEVI ${target} %`, labels, target) },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { min: uptimeAxisMin(target, values), max: 100, title: { display: true, text: "%" } } },
      },
    } as ChartConfiguration;
  }

  private renderUptime(answer: MonthlyUptime) {
    const target = answer.target_pct ?? NEVI_TARGET;
    const label = this.monthValue;
    const inMonth = answer.rows.filter((r) => r.month === label && r.uptime_pct !== null);
    const ports = new Map<string, MonthlyRow[]>();
    for (const row of answer.rows) ports.set(row.port_id, [...(ports.get(row.port_id) ?? []), row]);
    const cols = {
      port: t("reports.col_port"),
      station: t("reports.col_station"),
      nevi: t("reports.col_uptime_nevi"),
      cec: t("reports.col_uptime_cec"),
      outage: t("reports.col_outage"),
      excluded: t("reports.col_excluded_nevi"),
      cecExcluded: t("reports.col_excluded_cec"),
    };
    return html`
      ${inMonth.length === 0
        ? html`<p class="muted">${t("reports.no_uptime", { month: monthLong(this.year, this.month) })}</p>`
        : html`<ev-chart label=${t("reports.uptime_chart")} .config=${this.uptimeChart(inMonth, target)}></ev-chart>
            <p class="muted small">${t("reports.uptime_explain", { target, zone: answer.time_zone })}</p>
            <table class="data responsive" data-table="month-uptime">
              <thead><tr><th>${cols.port}</th><th>${cols.station}</th><th class="num">${cols.nevi}</th><th class="num">${cols.cec}</th><th class="num">${cols.outage}</th><th class="num">${cols.excluded}</th><th class="num">${cols.cecExcluded}</th></tr></thead>
              <tbody>
                ${[...inMonth].sort((a, b) => (a.uptime_pct ?? 100) - (b.uptime_pct ?? 100)).map(
                  (r) => html`<tr data-port-id=${r.port_id} class=${(r.uptime_pct ?? 100) < target ? "below" : ""}>
                    <td data-label=${cols.port}>${portName(r)}</td>
                    <td data-label=${cols.station}>${r.station_name ?? "—"}</td>
                    <td class="num" data-label=${cols.nevi} data-uptime>${fmtPct(r.uptime_pct, 2)}</td>
                    <td class="num ${(r.cec_uptime_pct ?? 100) < (answer.cec_target_pct ?? CEC_TARGET) ? "below" : ""}" data-label=${cols.cec} data-cec-uptime>${fmtPct(r.cec_uptime_pct ?? null, 2)}</td>
                    <td class="num" data-label=${cols.outage} data-outage>${fmtMinutes(r.outage_minutes)}</td>
                    <td class="num" data-label=${cols.excluded} data-excluded>${fmtMinutes(r.excluded_minutes)}</td>
                    <td class="num" data-label=${cols.cecExcluded} data-cec-excluded>${fmtMinutes(r.cec_excluded_minutes ?? 0)}</td>
                  </tr>`,
                )}
              </tbody>
            </table>`}
      ${ports.size
        ? html`<h3>${t("reports.year_by_month", { year: String(answer.year) })}</h3>
          <div class="scroll-x"><table class="data months" data-table="year-uptime">
            <thead><tr><th>${cols.port}</th>${MONTH_NUMBERS.map((m) => html`<th class="num">${monthShort(m)}</th>`)}</tr></thead>
            <tbody>
              ${[...ports.values()].map((list) => html`<tr>
                <td class="port-cell">${portName(list[0])}</td>
                ${MONTH_NUMBERS.map((m) => {
                  const pct = list.find((r) => monthOf(r.month) === m)?.uptime_pct ?? null;
                  // null: the port was not in service that month (or it has not begun).
                  return pct === null
                    ? html`<td class="num muted" data-label=${monthShort(m)} title=${t("reports.not_in_service")}>—</td>`
                    : html`<td class="num ${pct < target ? "below" : ""}" data-label=${monthShort(m)}>${fmtPct(pct, 1)}</td>`;
                })}
              </tr>`)}
            </tbody>
          </table></div>`
        : html`<p class="muted">${t("reports.no_ports")}</p>`}
    `;
  }

  private usageChart(answer: Statistics, metric: (typeof METRICS)[number]): ChartConfiguration {
    // The rows are the hub's days: label them in its zone, not the browser's.
    const labels = answer.rows.map((row) => fmtDay(row.start, answer.summary.time_zone));
    return {
      type: "bar",
      data: {
        labels,
        datasets: [
          {
            label: metric.unit ? `${t(metric.label)} (${metric.unit})` : t(metric.label),
            data: answer.rows.map((r) => Number(r[metric.key] ?? 0)),
            backgroundColor: PALETTE[0],
          },
        ],
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } },
    };
  }

  private renderUsage(answer: Statistics | null) {
    if (answer === null) return html`<p class="muted">${t("reports.no_charger")}</p>`;
    const metric = METRICS.find((m) => m.key === this.metric) ?? METRICS[0];
    const s = answer.summary;
    const codes = Object.entries(s.error_codes);
    return html`
      <label>${t("reports.measure")}
        <select data-select="metric" @change=${(e: Event) => (this.metric = (e.target as HTMLSelectElement).value as keyof StatisticsRow)}>
          ${METRICS.map((m) => html`<option value=${m.key} ?selected=${m.key === metric.key}>${t(m.label)}</option>`)}
        </select></label>
      <ev-chart label=${t("reports.usage_chart")} .config=${this.usageChart(answer, metric)}></ev-chart>
      <dl class="facts wide" data-usage-summary>
        <dt>${t("reports.m_energy")}</dt><dd data-fact="energy">${fmtNumber(s.energy_kwh, 2, 2)} kWh</dd>
        <dt>${t("reports.m_sessions")}</dt><dd data-fact="sessions">${s.sessions}</dd>
        <dt>${t("reports.m_occupied")}</dt><dd>${fmtPct(s.occupied_percent, 1)}</dd>
        <dt>${t("reports.m_charging")}</dt><dd>${fmtPct(s.charging_percent, 1)}</dd>
        <dt>${t("reports.m_peak")}</dt><dd>${fmtNumber(s.peak_power_kw, 1, 1)} kW</dd>
        <dt>${t("reports.failed_sessions")}</dt><dd>${s.failed_sessions.length}${codes.length ? html` <span class="muted">(${codes.map(([c, n]) => `${c} × ${n}`).join(", ")})</span>` : null}</dd>
      </dl>
    `;
  }

  private renderExports() {
    return html`
      <div class="toolbar">
        <label>${t("reports.quarter")} <input data-input="quarter" .value=${this.quarter} pattern="\\d{4}Q[1-4]" size="8"
          @change=${(e: Event) => (this.quarter = (e.target as HTMLInputElement).value.trim().toUpperCase())} /></label>
        ${EVCHART_EXPORTS.map(
          (x) => html`<button data-action="evchart-${x.module}"
            @click=${() => this.download("/api/reports/evchart.csv" + query({ quarter: this.quarter, module: x.module }),
              `${x.module.length === 1 ? "evchart" : "evhub"}-${this.quarter}-${x.file}.csv`)}>${t(x.label)}</button>`,
        )}
      </div>
      <p class="muted small">${t("reports.evchart_explain")} <code>reports:</code></p>
      <div class="toolbar">
        <label>${t("reports.half_year")} <input data-input="half" .value=${this.half} pattern="\\d{4}H[12]" size="8"
          @change=${(e: Event) => (this.half = (e.target as HTMLInputElement).value.trim().toUpperCase())} /></label>
        <button data-action="cec" @click=${() => this.download("/api/reports/cec.csv" + query({ half: this.half }), `cec-${this.half}-semiannual.csv`)}>${t("reports.cec_report")}</button>
        <button data-action="cec-intervals" @click=${() => this.download("/api/reports/cec_intervals.csv" + query({ half: this.half }), `cec-${this.half}-intervals.csv`)}>${t("reports.cec_intervals")}</button>
      </div>
      <p class="muted small">${t("reports.cec_explain", { target: CEC_TARGET })}</p>
    `;
  }

  override render() {
    const csv = "/api/reports/uptime.csv" + query({ month: this.monthValue });
    return html`
      <h1>${t("nav.reports")}</h1>
      <div class="toolbar">
        <label>${t("reports.month")} <input type="month" .value=${this.monthValue} @change=${(e: Event) => this.setMonth((e.target as HTMLInputElement).value)} /></label>
        <button data-action="csv" @click=${() => this.download(csv, `uptime-${this.monthValue}.csv`)}>${t("reports.download_csv")}</button>
      </div>
      <section class="card">
        <h2>${t("reports.uptime_title", { month: monthLong(this.year, this.month) })}</h2>
        ${renderLoad(this.monthly, (answer) => this.renderUptime(answer), t("reports.monthly_uptime"))}
      </section>
      <section class="card" data-section="exclusions">
        <h2>${t("excl.title")}</h2>
        ${renderLoad(this.stations, (stations) => html`<ev-exclusions .targets=${exclusionTargets(stations)}
          .changed=${() => void this.monthly.reload()}></ev-exclusions>`, t("overview.charger_list"))}
      </section>
      <section class="card" data-section="exports">
        <h2>${t("reports.regulators")}</h2>
        ${this.renderExports()}
      </section>
      <section class="card">
        <h2>${t("reports.usage_title", { month: monthLong(this.year, this.month) })}</h2>
        ${renderLoad(this.stations, (stations) => html`
          ${stations.length > 1
            ? html`<label>${t("reports.charger")}
                <select data-select="station" @change=${(e: Event) => { this.stationId = (e.target as HTMLSelectElement).value; void this.statistics.reload(); }}>
                  ${stations.map((s) => html`<option value=${s.device_id} ?selected=${s.device_id === this.stationId}>${s.name}</option>`)}
                </select></label>`
            : null}
          ${renderLoad(this.statistics, (a) => this.renderUsage(a), t("reports.usage_stats"))}
        `, t("overview.charger_list"))}
      </section>
    `;
  }
}

/** A month row's port with its connector's number ("1 · Bay 1 connector 1"). */
function portName(row: MonthlyRow) {
  return html`${row.connector !== null ? html`<span class="connector-no">${row.connector}</span> ` : null}${row.name}`;
}

/** What an exclusion may cover from the reports page: the site, every station and port. */
function exclusionTargets(stations: Station[]): ExclusionTarget[] {
  return [
    ...stations.flatMap((station) => [
      { id: station.device_id, label: t("station.whole_station", { name: station.name }) },
      ...station.ports.map((port) => {
        const own = port.name || t("station.port_n", { n: port.number });
        return { id: port.device_id, label: own.startsWith(station.name) ? own : `${station.name} · ${own}` };
      }),
    ]),
    { id: "", label: t("excl.site") },
  ];
}
