// Charge success: did the charge work? Attempts, success and visit rates per station, port or
// site, by day or month (the hub's /api/charge_success), with the CSV download.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import { api, ApiError, query, type ChargeSuccessFigures, type ChargeSuccessReport, type ChargeSuccessTotal } from "../api.js";
import { LightElement } from "../base.js";
import { fmtNumber, t, type MessageKey } from "../i18n.js";
import { EventsController, errorMessage, fmtPct, Loader, notify, renderLoad } from "../ui.js";

type SuccessFigures = ChargeSuccessFigures;
type SuccessRow = ChargeSuccessTotal & { period?: string };

const GROUPS = ["station", "port", "site"] as const;
const PERIODS = ["day", "month"] as const;
const WORDS: Record<(typeof GROUPS)[number] | (typeof PERIODS)[number], MessageKey> = {
  station: "success.station",
  port: "success.port",
  site: "success.site",
  day: "success.day",
  month: "success.month",
};

function ratio(value: number | null): string {
  return value === null ? "—" : fmtPct(value * 100, 1);
}

function codes(found: Record<string, number>): string {
  const list = Object.entries(found).map(([code, count]) => `${code} ×${count}`);
  return list.length ? list.join(", ") : "—";
}

@customElement("ev-success")
export class SuccessPage extends LightElement {
  @state() private group: (typeof GROUPS)[number] = "station";
  @state() private by: (typeof PERIODS)[number] = "day";
  @state() private days = 30;

  private report = new Loader(this, () => api.get<ChargeSuccessReport>("/api/charge_success" + this.params()));

  constructor() {
    super();
    // A session ending or a port changing status may change the figures.
    new EventsController(this, ["charger_event"], () => void this.report.reload(), 30_000);
  }

  private params(): string {
    const end = new Date();
    const start = new Date(end.getTime() - this.days * 86_400_000);
    return query({ group: this.group, by: this.by, start: start.toISOString(), end: end.toISOString() });
  }

  private change(update: () => void): void {
    update();
    void this.report.reload();
  }

  private async download(): Promise<void> {
    try {
      const text = await api.get<string>("/api/charge_success" + this.params() + "&format=csv");
      const blob = new Blob([text], { type: "text/csv" });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `charge-success-${this.group}-${this.by}.csv`;
      document.body.append(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    } catch (err) {
      if (err instanceof ApiError && err.notAvailable) notify(t("overview.success_na"), "error");
      else notify(t("reports.download_failed", { reason: errorMessage(err) }), "error");
    }
  }

  private renderTiles(all: SuccessFigures) {
    return html`<div class="tiles">
      <div class="tile" data-count="attempts">
        <span class="tile-value">${all.attempts}</span><span class="tile-label">${t("success.attempts_tile")}</span>
      </div>
      <div class="tile" data-count="success-rate">
        <span class="tile-value">${ratio(all.success_rate)}</span><span class="tile-label">${t("success.rate_tile")}</span>
      </div>
      <div class="tile" data-count="visit-rate">
        <span class="tile-value">${ratio(all.visit_success_rate)}</span><span class="tile-label">${t("success.visit_rate_tile")}</span>
      </div>
      <div class="tile" data-count="attempts-per-visit">
        <span class="tile-value">${all.attempts_per_visit === null ? "—" : fmtNumber(all.attempts_per_visit, 2, 2)}</span>
        <span class="tile-label">${t("success.per_visit_tile")}</span>
      </div>
    </div>`;
  }

  private renderRows(rows: SuccessRow[], withPeriod: boolean) {
    if (rows.length === 0) return html`<p class="muted">${t("success.none")}</p>`;
    return html`<div class="scroll-x"><table class="data">
      <thead>
        <tr>
          <th>${t(WORDS[this.group])}</th>${withPeriod ? html`<th>${t(WORDS[this.by])}</th>` : ""}
          <th class="num">${t("success.col_attempts")}</th><th class="num">${t("success.col_success")}</th><th class="num">${t("success.col_visits")}</th>
          <th class="num">${t("success.col_visit_success")}</th><th class="num">${t("success.col_no_session")}</th><th class="num">${t("success.col_low_energy")}</th>
          <th class="num">${t("success.col_stop_reason")}</th><th class="num">${t("success.col_faulted")}</th><th>${t("success.col_mrec")}</th>
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (r) => html`<tr data-id=${r.id ?? ""}>
            <td>${r.name || "—"}</td>${withPeriod ? html`<td>${r.period}</td>` : ""}
            <td class="num">${r.attempts}</td>
            <td class="num" data-rate>${ratio(r.success_rate)}</td>
            <td class="num">${r.visits}</td>
            <td class="num">${ratio(r.visit_success_rate)}</td>
            <td class="num">${r.failed_no_session}</td>
            <td class="num">${r.failed_low_energy}</td>
            <td class="num">${r.failed_stop_reason}</td>
            <td class="num">${r.failed_faulted}</td>
            <td>${codes(r.error_codes)}</td>
          </tr>`,
        )}
      </tbody>
    </table></div>`;
  }

  override render() {
    return html`
      <h1>${t("nav.success")}</h1>
      <p class="muted">${t("success.explain")}</p>
      <div class="toolbar">
        <label>${t("success.group")}
          <select @change=${(e: Event) => this.change(() => (this.group = (e.target as HTMLSelectElement).value as typeof this.group))}>
            ${GROUPS.map((g) => html`<option value=${g} ?selected=${g === this.group}>${t(WORDS[g])}</option>`)}
          </select>
        </label>
        <label>${t("success.by")}
          <select @change=${(e: Event) => this.change(() => (this.by = (e.target as HTMLSelectElement).value as typeof this.by))}>
            ${PERIODS.map((p) => html`<option value=${p} ?selected=${p === this.by}>${t(WORDS[p])}</option>`)}
          </select>
        </label>
        <label>${t("success.last")}
          <select @change=${(e: Event) => this.change(() => (this.days = Number((e.target as HTMLSelectElement).value)))}>
            ${[7, 30, 90, 365].map((d) => html`<option value=${d} ?selected=${d === this.days}>${t("success.n_days", { count: d })}</option>`)}
          </select>
        </label>
        <button data-action="csv" @click=${() => this.download()}>${t("success.download")}</button>
      </div>
      ${renderLoad(
        this.report,
        (r) => html`${this.renderTiles(r.overall)}
          <section class="card"><h2>${t("success.totals")}</h2>${this.renderRows(r.totals, false)}</section>
          <section class="card"><h2>${r.by === "month" ? t("success.by_month") : t("success.by_day")}</h2>${this.renderRows(r.rows, true)}</section>`,
        t("nav.success"),
      )}
    `;
  }
}
