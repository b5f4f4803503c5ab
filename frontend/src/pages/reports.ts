// Reports: monthly uptime per port against the NEVI 97 % line, CSV download, usage charts.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import type { ChartConfiguration } from "chart.js";
import { api, ApiError, query, type Station } from "../api.js";
import { LightElement } from "../base.js";
import { PALETTE } from "../components/chart.js";
import "../components/chart.js";
import { errorMessage, fmtPct, Loader, notify, renderLoad, toDate } from "../ui.js";

export const NEVI_TARGET = 97;

interface MonthlyRow {
  station_id?: string;
  port_id?: string;
  name?: string;
  month: number | string;
  uptime_pct: number | null;
  [key: string]: unknown;
}

interface StatisticsAnswer {
  rows: Record<string, unknown>[];
  summary: Record<string, unknown>;
}

/** Month number 1-12 of a row whose month is 1-12, "YYYY-MM" or an ISO date. */
export function monthOf(value: number | string): number | null {
  if (typeof value === "number") return value >= 1 && value <= 12 ? value : null;
  const match = /^\d{4}-(\d{2})/.exec(value);
  if (match) return Number(match[1]);
  const asNumber = Number(value);
  return Number.isInteger(asNumber) && asNumber >= 1 && asNumber <= 12 ? asNumber : null;
}

function monthRange(year: number, month: number): { start: string; end: string } {
  const start = new Date(Date.UTC(year, month - 1, 1));
  const end = new Date(Date.UTC(year, month, 1));
  const now = new Date();
  return { start: start.toISOString(), end: (end > now ? now : end).toISOString() };
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

@customElement("ev-reports")
export class ReportsPage extends LightElement {
  @state() private year = new Date().getUTCFullYear();
  @state() private month = new Date().getUTCMonth() + 1;
  @state() private stationId = "";
  @state() private metric = "";

  private monthly = new Loader(this, async () => {
    const answer = await api.get<MonthlyRow[] | { rows: MonthlyRow[] }>(`/api/uptime/monthly?year=${this.year}`);
    return Array.isArray(answer) ? answer : answer.rows;
  });
  private stations = new Loader(this, () => api.get<Station[]>("/api/chargers"));
  private statistics = new Loader<StatisticsAnswer | null>(this, async () => {
    const stations = this.stations.value ?? (await api.get<Station[]>("/api/chargers"));
    const station = this.stationId || stations[0]?.device_id || "";
    if (!station) return null;
    const { start, end } = monthRange(this.year, this.month);
    return api.get<StatisticsAnswer>("/api/statistics" + query({ device_id: station, period: "day", start, end }));
  });

  private setMonth(value: string): void {
    const [year, month] = value.split("-").map(Number);
    if (!year || !month) return;
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
      if (err instanceof ApiError && err.notAvailable) notify("The uptime CSV is not available on this hub yet.", "error");
      else notify(`Download failed: ${errorMessage(err)}`, "error");
    }
  }

  private uptimeChart(rows: MonthlyRow[]): ChartConfiguration {
    const inMonth = rows.filter((r) => monthOf(r.month) === this.month && r.uptime_pct !== null);
    const labels = inMonth.map((r) => String(r.name ?? r.port_id ?? "?"));
    const values = inMonth.map((r) => r.uptime_pct as number);
    return {
      type: "bar",
      data: {
        labels,
        datasets: [
          {
            type: "bar",
            label: "Uptime %",
            data: values,
            backgroundColor: values.map((v) => (v < NEVI_TARGET ? "#dc2626" : "#16a34a")),
          },
          {
            type: "line",
            label: `NEVI ${NEVI_TARGET} %`,
            data: labels.map(() => NEVI_TARGET),
            borderColor: "#d97706",
            borderDash: [6, 4],
            pointRadius: 0,
            borderWidth: 2,
          },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { min: Math.max(0, Math.min(90, ...values) - 2), max: 100, title: { display: true, text: "%" } } },
      },
    } as ChartConfiguration;
  }

  private renderUptime(rows: MonthlyRow[]) {
    const inMonth = rows.filter((r) => monthOf(r.month) === this.month);
    const ports = new Map<string, MonthlyRow[]>();
    for (const row of rows) {
      const key = String(row.port_id ?? row.name);
      ports.set(key, [...(ports.get(key) ?? []), row]);
    }
    return html`
      ${inMonth.length === 0
        ? html`<p class="muted">No uptime measured for ${MONTHS[this.month - 1]} ${this.year}.</p>`
        : html`<ev-chart label="Uptime per port" .config=${this.uptimeChart(rows)}></ev-chart>
            <p class="muted small">Ports below the dashed line miss the NEVI ${NEVI_TARGET} % uptime requirement.</p>`}
      ${ports.size
        ? html`<div class="scroll-x"><table class="data months">
            <thead><tr><th>Port</th>${MONTHS.map((m) => html`<th class="num">${m}</th>`)}</tr></thead>
            <tbody>
              ${[...ports.values()].map((list) => html`<tr>
                <td>${list[0].name ?? list[0].port_id}</td>
                ${MONTHS.map((_, i) => {
                  const row = list.find((r) => monthOf(r.month) === i + 1);
                  const pct = row?.uptime_pct ?? null;
                  return html`<td class="num ${pct !== null && pct < NEVI_TARGET ? "below" : ""}">${pct === null ? "" : fmtPct(pct, 1)}</td>`;
                })}
              </tr>`)}
            </tbody>
          </table></div>`
        : null}
    `;
  }

  private usageChart(answer: StatisticsAnswer, metric: string): ChartConfiguration {
    const labels = answer.rows.map((row) => {
      const at = toDate((row.start ?? row.period_start ?? row.time) as string | number | undefined);
      return at ? at.toLocaleDateString(undefined, { month: "short", day: "numeric" }) : "";
    });
    return {
      type: "bar",
      data: {
        labels,
        datasets: [{ label: metric, data: answer.rows.map((r) => Number(r[metric] ?? 0)), backgroundColor: PALETTE[0] }],
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } },
    };
  }

  private renderUsage(answer: StatisticsAnswer | null) {
    if (answer === null) return html`<p class="muted">No charger to report on.</p>`;
    if (answer.rows.length === 0) return html`<p class="muted">No usage recorded in this month.</p>`;
    const metrics = Object.keys(answer.rows[0]).filter(
      (key) => !["start", "end", "period_start", "time"].includes(key) && answer.rows.some((r) => typeof r[key] === "number"),
    );
    const metric = metrics.includes(this.metric) ? this.metric : metrics[0] ?? "";
    return html`
      ${metrics.length > 1
        ? html`<label>Measure
            <select @change=${(e: Event) => (this.metric = (e.target as HTMLSelectElement).value)}>
              ${metrics.map((m) => html`<option value=${m} ?selected=${m === metric}>${m}</option>`)}
            </select></label>`
        : null}
      ${metric ? html`<ev-chart label="Usage per day" .config=${this.usageChart(answer, metric)}></ev-chart>` : null}
      ${Object.keys(answer.summary ?? {}).length
        ? html`<dl class="facts wide">${Object.entries(answer.summary).map(
            ([k, v]) => html`<dt>${k}</dt><dd>${typeof v === "number" ? v.toLocaleString() : String(v)}</dd>`,
          )}</dl>`
        : null}
    `;
  }

  override render() {
    const { start, end } = monthRange(this.year, this.month);
    const csv = "/api/reports/uptime.csv" + query({ start, end });
    const monthValue = `${this.year}-${String(this.month).padStart(2, "0")}`;
    return html`
      <h1>Reports</h1>
      <div class="toolbar">
        <label>Month <input type="month" .value=${monthValue} @change=${(e: Event) => this.setMonth((e.target as HTMLInputElement).value)} /></label>
        <button data-action="csv" @click=${() => this.download(csv, `uptime-${monthValue}.csv`)}>Download uptime CSV</button>
      </div>
      <section class="card">
        <h2>Uptime per port, ${MONTHS[this.month - 1]} ${this.year}</h2>
        ${renderLoad(this.monthly, (rows) => this.renderUptime(rows), "Monthly uptime")}
      </section>
      <section class="card">
        <h2>Usage</h2>
        ${renderLoad(this.stations, (stations) => html`
          ${stations.length > 1
            ? html`<label>Charger
                <select @change=${(e: Event) => { this.stationId = (e.target as HTMLSelectElement).value; void this.statistics.reload(); }}>
                  ${stations.map((s) => html`<option value=${s.device_id} ?selected=${s.device_id === this.stationId}>${s.name}</option>`)}
                </select></label>`
            : null}
          ${renderLoad(this.statistics, (a) => this.renderUsage(a), "Usage statistics")}
        `, "The charger list")}
      </section>
    `;
  }
}
