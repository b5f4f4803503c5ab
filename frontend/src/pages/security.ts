// Security events: refused connections, bad credentials, what chargers report. Searchable
// by station (charge point id), kind, least severity and time; the hub answers from the
// recorder's security_events table (every event it kept), not only the recent ones.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import { api, query, type SecurityEvent } from "../api.js";
import { LightElement } from "../base.js";
import { t } from "../i18n.js";
import { EventsController, fmtTime, Loader, renderLoad } from "../ui.js";

@customElement("ev-security")
export class SecurityPage extends LightElement {
  @state() private kind = "";
  @state() private station = "";
  @state() private severity = "";
  @state() private since = "";
  @state() private until = "";
  private events = new Loader(this, () =>
    api.get<SecurityEvent[]>(
      "/api/security/events" +
        query({
          limit: 500,
          kind: this.kind,
          station: this.station,
          severity: this.severity,
          since: isoOf(this.since),
          until: isoOf(this.until),
        }),
    ),
  );

  constructor() {
    super();
    new EventsController(this, ["security_event"], () => void this.events.reload());
  }

  private renderTable(events: SecurityEvent[]) {
    if (events.length === 0) return html`<p class="muted">${t("security.none")}</p>`;
    const sorted = [...events].sort((a, b) => b.time - a.time);
    const cols = {
      time: t("security.col_time"),
      severity: t("security.col_severity"),
      kind: t("security.col_kind"),
      charger: t("security.col_charger"),
      source: t("security.col_source"),
      remote: t("security.col_remote"),
      message: t("security.col_message"),
    };
    return html`<table class="data responsive">
      <thead><tr><th>${cols.time}</th><th>${cols.severity}</th><th>${cols.kind}</th><th>${cols.charger}</th><th>${cols.source}</th><th>${cols.remote}</th><th>${cols.message}</th></tr></thead>
      <tbody>
        ${sorted.map(
          (e) => html`<tr class="sev-${e.severity}">
            <td data-label=${cols.time}>${fmtTime(e.time)}</td>
            <td data-label=${cols.severity}><span class="badge sev">${e.severity}</span></td>
            <td data-label=${cols.kind}><a href="#/security" @click=${(ev: Event) => { ev.preventDefault(); this.filterKind(e.kind); }}>${e.kind}</a></td>
            <td data-label=${cols.charger}>${e.charge_point_id
              ? html`<a href="#/security" @click=${(ev: Event) => { ev.preventDefault(); this.set(() => (this.station = e.charge_point_id ?? "")); }}>${e.charge_point_id}</a>`
              : "—"}</td>
            <td data-label=${cols.source}>${e.source}</td>
            <td data-label=${cols.remote}>${e.remote ?? "—"}</td>
            <td data-label=${cols.message}>${e.message}${typeof e.data?.username === "string"
              ? html` <span class="muted">(${t("security.as_user", { name: e.data.username })})</span>`
              : null}</td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  private filterKind(kind: string): void {
    this.set(() => (this.kind = kind));
  }

  private set(change: () => void): void {
    change();
    void this.events.reload();
  }

  private input(change: (value: string) => void) {
    return (e: Event) => this.set(() => change((e.target as HTMLInputElement).value.trim()));
  }

  private renderFilters() {
    const filtered = this.kind || this.station || this.severity || this.since || this.until;
    return html`<form class="filters" data-form="security-filters" @submit=${(e: Event) => e.preventDefault()}>
      <label>${t("security.col_charger")} <input name="station" placeholder=${t("security.ph_station")} .value=${this.station} @change=${this.input((v) => (this.station = v))}></label>
      <label>${t("security.col_kind")} <input name="kind" placeholder=${t("security.ph_kind")} .value=${this.kind} @change=${this.input((v) => (this.kind = v))}></label>
      <label>${t("security.at_least")}
        <select name="severity" @change=${this.input((v) => (this.severity = v))}>
          ${["", "info", "warning", "critical"].map(
            (s) => html`<option value=${s} ?selected=${s === this.severity}>${s ? s : t("security.any_severity")}</option>`,
          )}
        </select></label>
      <label>${t("security.from")} <input name="since" type="datetime-local" .value=${this.since} @change=${this.input((v) => (this.since = v))}></label>
      <label>${t("security.to")} <input name="until" type="datetime-local" .value=${this.until} @change=${this.input((v) => (this.until = v))}></label>
      ${filtered
        ? html`<button type="button" class="small secondary" @click=${() => this.set(() => {
            this.kind = this.station = this.severity = this.since = this.until = "";
          })}>${t("security.show_all")}</button>`
        : null}
    </form>`;
  }

  override render() {
    return html`
      <h1>${t("nav.security")}</h1>
      ${this.renderFilters()}
      ${renderLoad(this.events, (e) => this.renderTable(e), t("security.log"))}
    `;
  }
}

/** A datetime-local input's value (local time) as ISO 8601 with its offset, for the API. */
function isoOf(local: string): string | undefined {
  if (!local) return undefined;
  const moment = new Date(local);
  return Number.isNaN(moment.getTime()) ? undefined : moment.toISOString();
}
