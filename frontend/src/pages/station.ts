// One station: connectors with live power and energy, status timeline, sessions, uptime,
// charge success, firmware, and the actions an operator may take.

import { html, type PropertyValues } from "lit";
import { customElement, property, state } from "lit/decorators.js";
import type { ChartConfiguration } from "chart.js";
import {
  api,
  LOCK_REASONS,
  query,
  type ChargeSuccessReport,
  type ChargingSession,
  type Exclusion,
  type HistoryPoint,
  type Port,
  type Station,
  type UptimeReport,
} from "../api.js";
import { LightElement } from "../base.js";
import { type PanelInfo, type PanelStation } from "./panel.js";
import { PALETTE, powerScales } from "../components/chart.js";
import "../components/chart.js";
import "../components/exclusions.js";
import { exclusionCovers, reasonLabel, type ExclusionTarget } from "../components/exclusions.js";
import { commandLabel, describeResult, type CommandKind } from "../components/results.js";
import { fmtNumber, t, tMaybe, type MessageKey } from "../i18n.js";
import {
  hasCapability,
  portEnergy,
  portErrorCode,
  portPower,
  portSessionEnergy,
  portStatus,
  stationConnectivity,
  stationEntityIds,
  stationFirmware,
  stationStatus,
} from "../model.js";
import { session } from "../session.js";
import {
  badge,
  confirmAction,
  confirmDialog,
  EventsController,
  errorMessage,
  fmtAgo,
  fmtEnergy,
  fmtMinutes,
  fmtPct,
  fmtPower,
  fmtTime,
  LiveController,
  Loader,
  notify,
  num,
  renderLoad,
  statusClass,
  toDate,
} from "../ui.js";

type History = Record<string, HistoryPoint[]>;

const POWER_WINDOW_MS = 60 * 60 * 1000;
const TIMELINE_WINDOW_MS = 24 * 60 * 60 * 1000;
const HISTORY_WINDOW_MS = 24 * 60 * 60 * 1000;
const SUCCESS_DAYS = 30;

@customElement("ev-station")
export class StationPage extends LightElement {
  @property() deviceId = "";
  /** The station page sections integrations ship (panels with placement "station"). */
  @property({ attribute: false }) sections: PanelInfo[] = [];
  private lastSectionStation: PanelStation | null = null;
  @state() private busy: string | null = null;
  @state() private limit = "";

  private station = new Loader(this, () => api.get<Station>(`/api/chargers/${encodeURIComponent(this.deviceId)}`));
  private history = new Loader(this, () => this.loadHistory());
  // This month so far (hub time zone), per port of this station.
  private uptime = new Loader(this, () => api.get<UptimeReport>("/api/uptime" + query({ station_id: this.deviceId })));
  // Recorded sessions of the last 7 days, newest first.
  private sessions = new Loader(this, () => api.get<ChargingSession[]>("/api/sessions" + query({ station_id: this.deviceId })));
  // This station's charge attempts over the trailing 30 days.
  private success = new Loader(this, () => {
    const end = new Date();
    const start = new Date(end.getTime() - SUCCESS_DAYS * 86_400_000);
    return api.get<ChargeSuccessReport>(
      "/api/charge_success" +
        query({ start: start.toISOString(), end: end.toISOString(), group: "station", by: "month", station_id: this.deviceId }),
    );
  });
  // Exclusions overlapping the timeline's window (drawn on each port's row).
  private exclusions = new Loader(this, () => {
    const end = Date.now();
    return api.get<Exclusion[]>(
      "/api/uptime/exclusions" +
        query({ start: new Date(end - TIMELINE_WINDOW_MS).toISOString(), end: new Date(end + 60_000).toISOString() }),
    );
  });
  /** Live power points per port device id, appended as the power entity changes. */
  private livePower = new Map<string, { x: number; y: number }[]>();

  constructor() {
    super();
    new LiveController(this, () => (this.station.value ? stationEntityIds(this.station.value) : []));
    // Entities appear when a charger first reports them (power, energy...): fetch their ids.
    new EventsController(
      this,
      ["entity_registry_updated", "device_registry_updated"],
      () => void this.station.reload(),
      300,
    );
    new EventsController(this, ["charger_event"], () => void this.sessions.reload(), 1500);
    new EventsController(this, ["charger_event"], () => void this.success.reload(), 30_000);
    new EventsController(this, ["uptime_updated", "uptime_outage"], () => void this.uptime.reload(), 2000);
    new EventsController(this, ["uptime_exclusion"], () => void this.exclusions.reload(), 300);
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has("deviceId") && changed.get("deviceId") !== undefined) {
      this.livePower.clear();
      void this.station.reload().then(() => this.history.reload());
      void this.uptime.reload();
      void this.sessions.reload();
      void this.success.reload();
      void this.exclusions.reload();
    }
  }

  private async loadHistory(): Promise<History> {
    let station = this.station.value;
    if (!station) {
      station = await api.get<Station>(`/api/chargers/${encodeURIComponent(this.deviceId)}`);
    }
    const ids = station.ports.flatMap((p) =>
      ["status", "power"]
        .map((key) => p.entities?.[key])
        .filter((id): id is string => Boolean(id)),
    );
    if (ids.length === 0) return {};
    const end = new Date();
    const start = new Date(end.getTime() - HISTORY_WINDOW_MS);
    return api.get<History>(
      "/api/history" + query({ entity_id: ids.join(","), start: start.toISOString(), end: end.toISOString() }),
    );
  }

  /** A station's or port's name for people, from its device id (null: not this station's). */
  private nameOf(station: Station, id: string): string | null {
    if (id === station.device_id) return station.name;
    const port = station.ports.find((p) => p.device_id === id);
    return port ? portLabel(station, port) : null;
  }

  /** Confirm, then call the service and say what came of it ("Bay 1: reset accepted").
   * ask replaces the plain confirmation with a dialog that returns more service data
   * (null: cancelled). */
  private async act(
    station: Station,
    kind: CommandKind,
    message: string,
    service: string,
    data: Record<string, unknown>,
    target: Record<string, unknown>,
    ask?: (label: string, message: string) => Promise<Record<string, unknown> | null>,
  ) {
    const label = ACTION_TITLES[kind]();
    let extra: Record<string, unknown> | null = {};
    if (ask) extra = await ask(label, message);
    else if (!(await confirmAction(label, message, label))) extra = null;
    if (extra === null) return;
    this.busy = label;
    const sent = { ...data, ...extra };
    try {
      const result = await session.callService("charger", service, sent, target);
      notify(describeResult(kind, sent, result, (id) => this.nameOf(station, id)));
    } catch (err) {
      const name = this.nameOf(station, String(target.device_id)) ?? station.name;
      notify(t("result.failed", { target: name, action: commandLabel(kind, sent), reason: errorMessage(err) }), "error");
    } finally {
      this.busy = null;
    }
  }

  private renderActions(station: Station) {
    if (!session.canOperate) return null;
    const target = { device_id: station.device_id };
    const name = station.name;
    const can = (c: string) => hasCapability(station, c);
    const any = ["reset", "set_availability", "trigger_status", "set_current_limit"].some(can);
    if (!any) return html`<section class="card actions"><h2>${t("station.actions")}</h2><p class="muted">${t("station.no_actions")}</p></section>`;
    return html`<section class="card actions" data-section="actions">
      <h2>${t("station.actions")}</h2>
      <div class="button-row">
        ${can("reset")
          ? html`<button data-action="reset-soft" ?disabled=${this.busy !== null}
                @click=${() => this.act(station, "reset", t("station.confirm_reset", { name }), "reset", { type: "soft" }, target)}>${t("station.reset")}</button>
              <button data-action="reset-hard" class="danger" ?disabled=${this.busy !== null}
                @click=${() => this.act(station, "hard_reset", t("station.confirm_hard_reset", { name }), "reset", { type: "hard" }, target)}>${t("station.hard_reset")}</button>`
          : null}
        ${can("set_availability")
          ? html`<button data-action="lock" ?disabled=${this.busy !== null}
                @click=${() => this.act(station, "lock", t("station.confirm_lock", { name }), "set_availability", { available: false }, target, askLock)}>${t("station.lock")}</button>
              <button data-action="unlock" ?disabled=${this.busy !== null}
                @click=${() => this.act(station, "unlock", t("station.confirm_unlock", { name }), "set_availability", { available: true }, target)}>${t("station.unlock")}</button>`
          : null}
        ${can("trigger_status")
          ? html`<button data-action="trigger-status" ?disabled=${this.busy !== null}
              @click=${() => this.act(station, "trigger_status", t("station.confirm_trigger", { name }), "trigger_status", {}, target)}>${t("station.trigger_status")}</button>`
          : null}
      </div>
      ${can("set_current_limit")
        ? html`<form class="inline-form" @submit=${(e: SubmitEvent) => {
            e.preventDefault();
            const limit = Number(this.limit);
            if (!Number.isFinite(limit) || limit < 0) {
              notify(t("station.limit_invalid"), "error");
              return;
            }
            void this.act(station, "set_current_limit", t("station.confirm_limit", { name, limit }), "set_current_limit", { limit }, target);
          }}>
            <label>${t("station.limit_label")}
              <input type="number" min="0" step="0.1" inputmode="decimal" required .value=${this.limit}
                @input=${(e: InputEvent) => (this.limit = (e.target as HTMLInputElement).value)} />
            </label>
            <button type="submit" data-action="current-limit" ?disabled=${this.busy !== null}>${t("station.set_limit")}</button>
          </form>`
        : null}
      ${this.busy ? html`<p class="muted" role="status">${this.busy}…</p>` : null}
    </section>`;
  }

  private renderPortActions(station: Station, port: Port) {
    if (!session.canOperate) return null;
    const target = { device_id: port.device_id };
    const name = portLabel(station, port);
    return html`<div class="button-row small">
      ${hasCapability(station, "unlock_connector")
        ? html`<button class="small" data-action="unlock-connector" ?disabled=${this.busy !== null}
            @click=${() => this.act(station, "unlock_connector", t("station.confirm_unlock_connector", { name }), "unlock_connector", {}, target)}>${t("station.unlock_connector")}</button>`
        : null}
      ${hasCapability(station, "set_availability")
        ? html`<button class="small" data-action="lock-port" ?disabled=${this.busy !== null}
              @click=${() => this.act(station, "lock", t("station.confirm_lock_port", { name }), "set_availability", { available: false }, target, askLock)}>${t("station.lock_port")}</button>
            <button class="small" data-action="unlock-port" ?disabled=${this.busy !== null}
              @click=${() => this.act(station, "unlock", t("station.confirm_unlock_port", { name }), "set_availability", { available: true }, target)}>${t("station.unlock_port")}</button>`
        : null}
    </div>`;
  }

  private renderPorts(station: Station) {
    if (station.ports.length === 0) return html`<p class="muted">${t("station.no_ports")}</p>`;
    const uptime = this.uptime.value;
    return html`<div class="ports-grid">
      ${station.ports.map((port) => {
        const status = portStatus(port);
        const error = portErrorCode(port);
        const outage = uptime?.ports.find((p) => p.port_id === port.device_id);
        return html`<article class="card port ${statusClass(status)}" data-port=${port.number} data-port-device=${port.device_id}>
          <header><h3><span class="connector-no" title=${t("station.connector_n", { n: port.number })}>${port.number}</span> ${port.name || t("station.port_n", { n: port.number })}</h3> ${badge(status)}</header>
          <dl class="facts">
            ${error && error !== "NoError" ? html`<dt>${t("station.error")}</dt><dd class="bad-text" data-error-code>${error}</dd>` : null}
            <dt>${t("station.power")}</dt><dd data-live="power">${fmtPower(portPower(port))}</dd>
            <dt>${t("station.energy_meter")}</dt><dd data-live="energy">${fmtEnergy(portEnergy(port))}</dd>
            <dt>${t("station.session")}</dt><dd>${fmtEnergy(portSessionEnergy(port))}</dd>
            <dt>${t("station.uptime_nevi")}</dt><dd data-uptime>${fmtPct(outage ? outage.uptime_pct : port.uptime_pct)}</dd>
            ${outage
              ? html`<dt>${t("station.uptime_cec")}</dt><dd data-cec-uptime>${fmtPct(outage.cec_uptime_pct ?? null)}</dd>
                <dt>${t("station.outage")}</dt><dd data-outage>${fmtMinutes(outage.outage_minutes)}${outage.excluded_minutes > 0 || (outage.cec_excluded_minutes ?? 0) > 0
                  ? html` <span class="muted" data-excluded>(${t("station.excluded_detail", { nevi: fmtMinutes(outage.excluded_minutes), cec: fmtMinutes(outage.cec_excluded_minutes ?? 0) })})</span>`
                  : null}</dd>`
              : null}
          </dl>
          ${this.renderPortActions(station, port)}
        </article>`;
      })}
    </div>`;
  }

  private powerChart(station: Station, history: History): ChartConfiguration {
    const now = Date.now();
    const datasets = station.ports.map((port, index) => {
      const id = port.entities?.power;
      const points = (id ? history[id] ?? [] : [])
        .map((p) => ({ x: toDate(p.last_changed)?.getTime() ?? 0, y: num(p.state) }))
        .filter((p): p is { x: number; y: number } => p.y !== null && p.x >= now - POWER_WINDOW_MS);
      const live = this.livePower.get(port.device_id) ?? [];
      const state = session.entities.get(id);
      const value = num(state?.s);
      if (state && value !== null) {
        const at = state.lu * 1000;
        if (!live.length || live[live.length - 1].x < at) live.push({ x: at, y: value });
      }
      this.livePower.set(port.device_id, live.filter((p) => p.x >= now - POWER_WINDOW_MS));
      // The power entities report watts; the chart shows kW, as the rest of the page.
      const merged = [...points, ...live].sort((a, b) => a.x - b.x).map((p) => ({ x: p.x, y: p.y / 1000 }));
      if (merged.length) merged.push({ x: now, y: merged[merged.length - 1].y });
      return {
        label: portLabel(station, port),
        data: merged,
        borderColor: PALETTE[index % PALETTE.length],
        backgroundColor: PALETTE[index % PALETTE.length] + "33",
        stepped: true as const,
        pointRadius: 0,
        fill: true,
      };
    });
    return {
      type: "line",
      data: { datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        parsing: false,
        scales: powerScales(now - POWER_WINDOW_MS, now),
        plugins: {
          legend: { display: station.ports.length > 1 },
          tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${fmtNumber(item.parsed.y ?? 0, 2, 2)} kW` } },
        },
      },
    };
  }

  private renderTimeline(station: Station, history: History) {
    const now = Date.now();
    const start = now - TIMELINE_WINDOW_MS;
    const exclusions = this.exclusions.value ?? [];
    const pct = (from: number, to: number) =>
      `left:${((from - start) / TIMELINE_WINDOW_MS) * 100}%;width:${((to - from) / TIMELINE_WINDOW_MS) * 100}%`;
    return html`<div class="timeline" data-timeline>
      ${station.ports.map((port) => {
        const points = [...(history[port.entities?.status ?? ""] ?? [])].map((p) => ({
          at: toDate(p.last_changed)?.getTime() ?? 0,
          state: p.state,
        }));
        const live = session.entities.get(port.entities?.status);
        if (live && (!points.length || live.lc * 1000 > points[points.length - 1].at)) {
          points.push({ at: live.lc * 1000, state: live.s });
        }
        const segments: { from: number; to: number; state: string }[] = [];
        points.forEach((point, i) => {
          const to = i + 1 < points.length ? points[i + 1].at : now;
          const from = Math.max(point.at, start);
          if (to > from) segments.push({ from, to, state: point.state });
        });
        const excluded = exclusions
          .filter((x) => exclusionCovers(x, station.device_id, [port.device_id]) && (x.port_id === null || x.port_id === port.device_id))
          .map((x) => ({
            x,
            from: Math.max(start, toDate(x.start)?.getTime() ?? start),
            to: Math.min(now, toDate(x.end)?.getTime() ?? now),
          }))
          .filter((band) => band.to > band.from);
        const name = port.name || t("station.port_n", { n: port.number });
        return html`<div class="timeline-row" data-timeline-port=${port.number}>
          <span class="timeline-label" title=${name}><span class="connector-no" data-connector=${port.number}
            title=${t("station.connector_n", { n: port.number })}>${port.number}</span> ${name}</span>
          <div class="timeline-bar" role="img" aria-label=${t("station.timeline_aria", { n: port.number })}>
            ${segments.length === 0 ? html`<span class="muted small">${t("station.no_history")}</span>` : null}
            ${segments.map(
              // .style: set through the CSSOM, as the Content-Security-Policy refuses style
              // attributes (a styleMap writes the attribute on its first render).
              (seg) => html`<span class="seg ${statusClass(seg.state)}" data-state=${seg.state}
                .style=${pct(seg.from, seg.to)}
                title="${statusWord(seg.state)}: ${fmtTime(seg.from / 1000)} – ${fmtTime(seg.to / 1000)}"></span>`,
            )}
            ${excluded.map(
              (band) => html`<span class="seg excluded" data-exclusion=${band.x.exclusion_id}
                .style=${pct(band.from, band.to)}
                title="${t("station.excluded_band", { reason: reasonLabel(band.x.reason) })}: ${fmtTime(band.from / 1000)} – ${band.x.end ? fmtTime(band.to / 1000) : t("excl.open_ended")}${band.x.note ? ` (${band.x.note})` : ""}"></span>`,
            )}
          </div>
        </div>`;
      })}
      <div class="timeline-axis muted small"><span>${t("station.h24_ago")}</span><span>${t("station.now")}</span></div>
      <ul class="legend" data-legend aria-label=${t("station.legend")}>
        ${LEGEND.map(
          ([cls, key]) => html`<li><span class="swatch ${cls}" aria-hidden="true"></span>${t(key)}</li>`,
        )}
      </ul>
    </div>`;
  }

  private renderSessions(station: Station, sessions: ChargingSession[]) {
    if (sessions.length === 0) return html`<p class="muted">${t("station.no_sessions")}</p>`;
    const portName = (s: ChargingSession) => {
      const port = station.ports.find((p) => p.device_id === s.port_id);
      return port ? String(port.number) : s.port === null ? "—" : String(s.port);
    };
    const cols = {
      port: t("station.col_port"),
      start: t("station.col_start"),
      duration: t("station.col_duration"),
      tag: t("station.col_id_tag"),
      energy: t("station.col_energy"),
      end: t("station.col_end"),
    };
    return html`<table class="data responsive" data-table="sessions">
      <thead><tr><th>${cols.port}</th><th>${cols.start}</th><th>${cols.duration}</th><th>${cols.tag}</th><th class="num">${cols.energy}</th><th>${cols.end}</th></tr></thead>
      <tbody>
        ${sessions.slice(0, 50).map(
          (s) => html`<tr data-transaction=${s.transaction_id}>
            <td data-label=${cols.port}>${portName(s)}</td>
            <td data-label=${cols.start}>${fmtTime(s.started_at)}</td>
            <td data-label=${cols.duration}>${s.stopped_at === null ? html`<span class="badge busy">${t("station.in_progress")}</span>` : duration((s.duration_s ?? 0) * 1000)}</td>
            <td data-label=${cols.tag}>${s.id_tag ?? "—"}</td>
            <td data-label=${cols.energy} class="num">${fmtEnergy(s.energy_wh)}</td>
            <td data-label=${cols.end}>${s.error_code && s.error_code !== "NoError"
              ? html`<span class="bad-text">${s.error_code}</span>`
              : s.stop_reason ?? "—"}</td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  private renderSuccess() {
    const state = this.success.state;
    const days = { days: SUCCESS_DAYS };
    if (state.kind !== "ready") {
      const text = state.kind === "loading" ? "…" : "n/a";
      return html`<dt>${t("station.success_days", days)}</dt><dd data-success-rate>${text}</dd>`;
    }
    const total = state.value.totals[0];
    const attempts = total?.attempts ?? 0;
    const judged = total ? total.successful + total.failed : 0;
    const rate = total && judged > 0 && total.success_rate !== null && Number.isFinite(total.success_rate) ? total.success_rate * 100 : null;
    return html`<dt>${t("station.success_days", days)}</dt>
      <dd data-success-rate><a href="#/success">${fmtPct(rate, 1)}</a>${judged > 0
        ? html` <span class="muted">(${t("station.n_of_m", { n: total?.successful ?? 0, m: judged })})</span>`
        : null}</dd>
      <dt>${t("station.attempts_days", days)}</dt>
      <dd data-success-attempts>${attempts}${total && total.in_progress > 0 ? html` <span class="muted">(${t("station.in_progress_n", { count: total.in_progress })})</span>` : null}</dd>`;
  }

  private renderStation(station: Station) {
    const connectivity = stationConnectivity(station);
    const firmwareStatus = session.entities.get(station.entities?.firmware_status)?.s;
    const targets: ExclusionTarget[] = [
      { id: station.device_id, label: t("station.whole_station", { name: station.name }) },
      ...station.ports.map((port) => ({ id: port.device_id, label: portLabel(station, port) })),
    ];
    return html`
      <p class="crumbs"><a href="#/chargers">${t("nav.chargers")}</a> ›</p>
      <h1>${station.name} ${badge(connectivity)}</h1>
      <section class="card">
        <dl class="facts wide">
          <dt>${t("station.charge_point_id")}</dt><dd>${station.charge_point_id ?? "—"}</dd>
          <dt>${t("station.protocol")}</dt><dd>${station.protocol ?? "—"}</dd>
          <dt>${t("station.status")}</dt><dd>${badge(stationStatus(station))}</dd>
          <dt>${t("station.vendor_model")}</dt><dd>${station.vendor ?? "—"} ${station.model ?? ""}</dd>
          <dt>${t("station.serial")}</dt><dd>${station.serial ?? "—"}</dd>
          <dt>${t("station.firmware")}</dt><dd data-firmware>${stationFirmware(station) ?? "—"}${firmwareStatus ? html` <span class="muted">(${firmwareStatus})</span>` : null}</dd>
          <dt>${t("station.last_seen")}</dt><dd title=${fmtTime(station.last_seen)}>${fmtAgo(station.last_seen)}</dd>
          ${this.renderSuccess()}
        </dl>
      </section>
      ${this.renderActions(station)}
      <h2>${t("station.connectors")}</h2>
      ${this.renderPorts(station)}
      <section class="card">
        <h2>${t("station.power_hour")}</h2>
        ${renderLoad(this.history, (h) => html`<ev-chart label=${t("station.power_chart")} .config=${this.powerChart(station, h)}></ev-chart>`, t("station.history"))}
      </section>
      <section class="card">
        <h2>${t("station.status_24h")}</h2>
        ${renderLoad(this.history, (h) => this.renderTimeline(station, h), t("station.history"))}
      </section>
      <section class="card" data-section="exclusions">
        <h2>${t("excl.title")}</h2>
        <ev-exclusions .stationId=${station.device_id} .targets=${targets}
          .changed=${() => { void this.exclusions.reload(); void this.uptime.reload(); }}></ev-exclusions>
      </section>
      <section class="card">
        <h2>${t("station.sessions_7d")}</h2>
        ${renderLoad(this.sessions, (list) => this.renderSessions(station, list), t("station.sessions"))}
      </section>
      <ev-station-sections
        .panels=${this.sections.filter((panel) => panel.domain === station.protocol)}
        .station=${this.sectionStation(station)}
      ></ev-station-sections>
    `;
  }

  /** What the integration's station sections get as `station` (the same object while the
   * station stays the same, so the sections are not mounted again on every update). */
  private sectionStation(station: Station): PanelStation {
    const last = this.lastSectionStation;
    if (
      last &&
      last.device_id === station.device_id &&
      last.charge_point_id === station.charge_point_id &&
      last.name === station.name
    ) {
      return last;
    }
    this.lastSectionStation = {
      device_id: station.device_id,
      charge_point_id: station.charge_point_id,
      name: station.name,
    };
    return this.lastSectionStation;
  }

  override render() {
    return renderLoad(this.station, (s) => this.renderStation(s), t("station.the_charger"));
  }
}

/** The lock confirmation: why the port goes out of use (a reason the uptime rules exclude, or
 * none: the locked time counts as downtime) and an optional note. null when cancelled. */
function askLock(title: string, message: string): Promise<Record<string, unknown> | null> {
  const reasonField = document.createElement("label");
  reasonField.textContent = t("lock.reason");
  const reason = document.createElement("select");
  reason.dataset.lockReason = "";
  const none = new Option(t("lock.no_reason"), "", true, true);
  reason.append(none, ...LOCK_REASONS.map((r) => new Option(reasonLabel(r.value), r.value)));
  reasonField.append(reason);
  const noteLabel = document.createElement("label");
  noteLabel.textContent = t("lock.note");
  const note = document.createElement("input");
  note.type = "text";
  note.maxLength = 500;
  note.dataset.lockNote = "";
  noteLabel.append(note);
  const hint = document.createElement("p");
  hint.className = "muted small";
  hint.textContent = t("lock.hint");
  return confirmDialog(title, message, {
    confirmLabel: title,
    className: "lock-dialog",
    fields: [reasonField, noteLabel, hint],
    focus: reason,
    collect: () => {
      const data: Record<string, unknown> = {};
      if (reason.value) data.reason = reason.value;
      const written = note.value.trim();
      if (written) data.note = written.slice(0, 500);
      return data;
    },
  });
}

function duration(ms: number): string {
  const minutes = Math.round(ms / 60000);
  if (minutes < 60) return t("time.minutes", { m: minutes });
  return t("time.hours_minutes", { h: Math.floor(minutes / 60), m: minutes % 60 });
}

/** The titles of the confirmations (and of the busy line) per command. */
const ACTION_TITLES: Record<CommandKind, () => string> = {
  reset: () => t("station.reset"),
  hard_reset: () => t("station.hard_reset"),
  lock: () => t("station.lock"),
  unlock: () => t("station.unlock"),
  unlock_connector: () => t("station.unlock_connector"),
  trigger_status: () => t("station.trigger_status"),
  set_current_limit: () => t("station.set_limit"),
};

/** The timeline's colours and what they mean. */
const LEGEND: [string, MessageKey][] = [
  ["ok", "legend.available"],
  ["busy", "legend.busy"],
  ["bad", "legend.faulted"],
  ["off", "legend.unavailable"],
  ["warn", "legend.pending"],
  ["excluded", "legend.excluded"],
];

/** A port's name for people, with its station's when the port's own does not say it. */
function portLabel(station: Station, port: Port): string {
  const own = port.name || t("station.port_n", { n: port.number });
  return own.startsWith(station.name) ? own : `${station.name} · ${own}`;
}

/** A connector status in words (OCPP's vocabulary, translated where the catalogue has it). */
function statusWord(status: string): string {
  return tMaybe(`status.${status}`, status);
}
