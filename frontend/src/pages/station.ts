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
  type HistoryPoint,
  type Port,
  type Station,
  type UptimeReport,
} from "../api.js";
import { LightElement } from "../base.js";
import { type PanelInfo, type PanelStation } from "./panel.js";
import { PALETTE, timeTick } from "../components/chart.js";
import "../components/chart.js";
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
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has("deviceId") && changed.get("deviceId") !== undefined) {
      this.livePower.clear();
      void this.station.reload().then(() => this.history.reload());
      void this.uptime.reload();
      void this.sessions.reload();
      void this.success.reload();
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

  /** Confirm, then call the service. ask replaces the plain confirmation with a dialog that
   * returns more service data (null: cancelled). */
  private async act(
    label: string,
    message: string,
    service: string,
    data: Record<string, unknown>,
    target: Record<string, unknown>,
    ask?: (label: string, message: string) => Promise<Record<string, unknown> | null>,
  ) {
    let extra: Record<string, unknown> | null = {};
    if (ask) extra = await ask(label, message);
    else if (!(await confirmAction(label, message, label))) extra = null;
    if (extra === null) return;
    this.busy = label;
    try {
      const result = await session.callService("charger", service, { ...data, ...extra }, target);
      notify(`${label}: ${describeResult(result)}`);
    } catch (err) {
      notify(`${label} failed: ${errorMessage(err)}`, "error");
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
    if (!any) return html`<section class="card actions"><h2>Actions</h2><p class="muted">This charger declares no remote actions.</p></section>`;
    return html`<section class="card actions" data-section="actions">
      <h2>Actions</h2>
      <div class="button-row">
        ${can("reset")
          ? html`<button data-action="reset-soft" ?disabled=${this.busy !== null}
                @click=${() => this.act("Reset", `Restart ${name} (soft reset)? Charging sessions end.`, "reset", { type: "soft" }, target)}>Reset</button>
              <button data-action="reset-hard" class="danger" ?disabled=${this.busy !== null}
                @click=${() => this.act("Hard reset", `Hard reset ${name}? The station reboots at once.`, "reset", { type: "hard" }, target)}>Hard reset</button>`
          : null}
        ${can("set_availability")
          ? html`<button data-action="lock" ?disabled=${this.busy !== null}
                @click=${() => this.act("Lock", `Make ${name} unavailable for charging?`, "set_availability", { available: false }, target, askLock)}>Lock</button>
              <button data-action="unlock" ?disabled=${this.busy !== null}
                @click=${() => this.act("Unlock", `Make ${name} available for charging? A lock's excluded reason, if it gave one, ends now.`, "set_availability", { available: true }, target)}>Unlock</button>`
          : null}
        ${can("trigger_status")
          ? html`<button data-action="trigger-status" ?disabled=${this.busy !== null}
              @click=${() => this.act("Trigger status", `Ask ${name} to report its status now?`, "trigger_status", {}, target)}>Trigger status</button>`
          : null}
      </div>
      ${can("set_current_limit")
        ? html`<form class="inline-form" @submit=${(e: SubmitEvent) => {
            e.preventDefault();
            const limit = Number(this.limit);
            if (!Number.isFinite(limit) || limit < 0) {
              notify("Enter a current limit in amperes (0 or more).", "error");
              return;
            }
            void this.act("Set current limit", `Limit ${name} to ${limit} A?`, "set_current_limit", { limit }, target);
          }}>
            <label>Current limit (A)
              <input type="number" min="0" step="0.1" inputmode="decimal" required .value=${this.limit}
                @input=${(e: InputEvent) => (this.limit = (e.target as HTMLInputElement).value)} />
            </label>
            <button type="submit" data-action="current-limit" ?disabled=${this.busy !== null}>Set limit</button>
          </form>`
        : null}
      ${this.busy ? html`<p class="muted" role="status">${this.busy}…</p>` : null}
    </section>`;
  }

  private renderPortActions(station: Station, port: Port) {
    if (!session.canOperate) return null;
    const target = { device_id: port.device_id };
    const label = `${station.name} port ${port.number}`;
    return html`<div class="button-row small">
      ${hasCapability(station, "unlock_connector")
        ? html`<button class="small" data-action="unlock-connector" ?disabled=${this.busy !== null}
            @click=${() => this.act("Unlock connector", `Release the cable lock of ${label}?`, "unlock_connector", {}, target)}>Unlock connector</button>`
        : null}
      ${hasCapability(station, "set_availability")
        ? html`<button class="small" data-action="lock-port" ?disabled=${this.busy !== null}
              @click=${() => this.act("Lock port", `Make ${label} unavailable?`, "set_availability", { available: false }, target, askLock)}>Lock port</button>
            <button class="small" data-action="unlock-port" ?disabled=${this.busy !== null}
              @click=${() => this.act("Unlock port", `Make ${label} available? A lock's excluded reason, if it gave one, ends now.`, "set_availability", { available: true }, target)}>Unlock port</button>`
        : null}
    </div>`;
  }

  private renderPorts(station: Station) {
    if (station.ports.length === 0) return html`<p class="muted">The charger has reported no connectors yet.</p>`;
    const uptime = this.uptime.value;
    return html`<div class="ports-grid">
      ${station.ports.map((port) => {
        const status = portStatus(port);
        const error = portErrorCode(port);
        const outage = uptime?.ports.find((p) => p.port_id === port.device_id);
        return html`<article class="card port ${statusClass(status)}" data-port=${port.number} data-port-device=${port.device_id}>
          <header><h3>${port.name || `Port ${port.number}`}</h3> ${badge(status)}</header>
          <dl class="facts">
            ${error && error !== "NoError" ? html`<dt>Error</dt><dd class="bad-text" data-error-code>${error}</dd>` : null}
            <dt>Power</dt><dd data-live="power">${fmtPower(portPower(port))}</dd>
            <dt>Energy meter</dt><dd data-live="energy">${fmtEnergy(portEnergy(port))}</dd>
            <dt>Session</dt><dd>${fmtEnergy(portSessionEnergy(port))}</dd>
            <dt>Uptime this month (NEVI)</dt><dd data-uptime>${fmtPct(outage ? outage.uptime_pct : port.uptime_pct)}</dd>
            ${outage
              ? html`<dt>Uptime this month (CEC)</dt><dd data-cec-uptime>${fmtPct(outage.cec_uptime_pct ?? null)}</dd>
                <dt>Outage</dt><dd data-outage>${Math.round(outage.outage_minutes)} min${outage.excluded_minutes > 0 || (outage.cec_excluded_minutes ?? 0) > 0
                  ? html` <span class="muted">(${Math.round(outage.excluded_minutes)} min excluded under NEVI, ${Math.round(outage.cec_excluded_minutes ?? 0)} under CEC)</span>`
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
      const merged = [...points, ...live].sort((a, b) => a.x - b.x);
      if (merged.length) merged.push({ x: now, y: merged[merged.length - 1].y });
      return {
        label: port.name || `Port ${port.number}`,
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
        scales: {
          x: { type: "linear", min: now - POWER_WINDOW_MS, max: now, ticks: { callback: timeTick, maxTicksLimit: 6 } },
          y: { beginAtZero: true, title: { display: true, text: "W" } },
        },
        plugins: { legend: { display: station.ports.length > 1 } },
      },
    };
  }

  private renderTimeline(station: Station, history: History) {
    const now = Date.now();
    const start = now - TIMELINE_WINDOW_MS;
    return html`<div class="timeline">
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
        return html`<div class="timeline-row">
          <span class="timeline-label">${port.name || `Port ${port.number}`}</span>
          <div class="timeline-bar" aria-label="Status of port ${port.number} over the last 24 hours">
            ${segments.length === 0 ? html`<span class="muted small">no history</span>` : null}
            ${segments.map(
              // .style: set through the CSSOM, as the Content-Security-Policy refuses style
              // attributes (a styleMap writes the attribute on its first render).
              (s) => html`<span class="seg ${statusClass(s.state)}"
                .style=${`left:${((s.from - start) / TIMELINE_WINDOW_MS) * 100}%;width:${((s.to - s.from) / TIMELINE_WINDOW_MS) * 100}%`}
                title="${s.state}: ${fmtTime(s.from / 1000)} – ${fmtTime(s.to / 1000)}"></span>`,
            )}
          </div>
        </div>`;
      })}
      <div class="timeline-axis muted small"><span>24 h ago</span><span>now</span></div>
    </div>`;
  }

  private renderSessions(station: Station, sessions: ChargingSession[]) {
    if (sessions.length === 0) return html`<p class="muted">No charging sessions in the last 7 days.</p>`;
    const portName = (s: ChargingSession) => {
      const port = station.ports.find((p) => p.device_id === s.port_id);
      return port ? String(port.number) : s.port === null ? "—" : String(s.port);
    };
    return html`<table class="data responsive" data-table="sessions">
      <thead><tr><th>Port</th><th>Start</th><th>Duration</th><th>Id tag</th><th class="num">Energy</th><th>End</th></tr></thead>
      <tbody>
        ${sessions.slice(0, 50).map(
          (s) => html`<tr data-transaction=${s.transaction_id}>
            <td data-label="Port">${portName(s)}</td>
            <td data-label="Start">${fmtTime(s.started_at)}</td>
            <td data-label="Duration">${s.stopped_at === null ? html`<span class="badge busy">in progress</span>` : duration((s.duration_s ?? 0) * 1000)}</td>
            <td data-label="Id tag">${s.id_tag ?? "—"}</td>
            <td data-label="Energy" class="num">${fmtEnergy(s.energy_wh)}</td>
            <td data-label="End">${s.error_code && s.error_code !== "NoError"
              ? html`<span class="bad-text">${s.error_code}</span>`
              : s.stop_reason ?? "—"}</td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  private renderSuccess() {
    const state = this.success.state;
    if (state.kind !== "ready") {
      const text = state.kind === "loading" ? "…" : "n/a";
      return html`<dt>Charge success (${SUCCESS_DAYS} days)</dt><dd data-success-rate>${text}</dd>`;
    }
    const total = state.value.totals[0];
    const attempts = total?.attempts ?? 0;
    const judged = total ? total.successful + total.failed : 0;
    const rate = total && judged > 0 && total.success_rate !== null && Number.isFinite(total.success_rate) ? total.success_rate * 100 : null;
    return html`<dt>Charge success (${SUCCESS_DAYS} days)</dt>
      <dd data-success-rate><a href="#/success">${fmtPct(rate, 1)}</a>${judged > 0
        ? html` <span class="muted">(${total?.successful ?? 0} of ${judged})</span>`
        : null}</dd>
      <dt>Charge attempts (${SUCCESS_DAYS} days)</dt>
      <dd data-success-attempts>${attempts}${total && total.in_progress > 0 ? html` <span class="muted">(${total.in_progress} in progress)</span>` : null}</dd>`;
  }

  private renderStation(station: Station) {
    const connectivity = stationConnectivity(station);
    const firmwareStatus = session.entities.get(station.entities?.firmware_status)?.s;
    return html`
      <p class="crumbs"><a href="#/chargers">Chargers</a> ›</p>
      <h1>${station.name} ${badge(connectivity)}</h1>
      <section class="card">
        <dl class="facts wide">
          <dt>Charge point id</dt><dd>${station.charge_point_id ?? "—"}</dd>
          <dt>Protocol</dt><dd>${station.protocol ?? "—"}</dd>
          <dt>Status</dt><dd>${badge(stationStatus(station))}</dd>
          <dt>Vendor / model</dt><dd>${station.vendor ?? "—"} ${station.model ?? ""}</dd>
          <dt>Serial</dt><dd>${station.serial ?? "—"}</dd>
          <dt>Firmware</dt><dd data-firmware>${stationFirmware(station) ?? "—"}${firmwareStatus ? html` <span class="muted">(${firmwareStatus})</span>` : null}</dd>
          <dt>Last seen</dt><dd title=${fmtTime(station.last_seen)}>${fmtAgo(station.last_seen)}</dd>
          ${this.renderSuccess()}
        </dl>
      </section>
      ${this.renderActions(station)}
      <h2>Connectors</h2>
      ${this.renderPorts(station)}
      <section class="card">
        <h2>Power, last hour</h2>
        ${renderLoad(this.history, (h) => html`<ev-chart label="Power per port" .config=${this.powerChart(station, h)}></ev-chart>`, "History")}
      </section>
      <section class="card">
        <h2>Status, last 24 hours</h2>
        ${renderLoad(this.history, (h) => this.renderTimeline(station, h), "History")}
      </section>
      <section class="card">
        <h2>Sessions, last 7 days</h2>
        ${renderLoad(this.sessions, (list) => this.renderSessions(station, list), "Sessions")}
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
    return renderLoad(this.station, (s) => this.renderStation(s), "The charger");
  }
}

/** The lock confirmation: why the port goes out of use (a reason the uptime rules exclude, or
 * none: the locked time counts as downtime) and an optional note. null when cancelled. */
function askLock(title: string, message: string): Promise<Record<string, unknown> | null> {
  const reasonLabel = document.createElement("label");
  reasonLabel.textContent = "Reason";
  const reason = document.createElement("select");
  reason.dataset.lockReason = "";
  const none = new Option("none — counts as downtime", "", true, true);
  reason.append(none, ...LOCK_REASONS.map((r) => new Option(r.label, r.value)));
  reasonLabel.append(reason);
  const noteLabel = document.createElement("label");
  noteLabel.textContent = "Note (optional)";
  const note = document.createElement("input");
  note.type = "text";
  note.maxLength = 500;
  note.dataset.lockNote = "";
  noteLabel.append(note);
  const hint = document.createElement("p");
  hint.className = "muted small";
  hint.textContent = "A lock with a reason has its time excluded from uptime; without one it counts as an outage.";
  return confirmDialog(title, message, {
    confirmLabel: title,
    className: "lock-dialog",
    fields: [reasonLabel, noteLabel, hint],
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
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function describeResult(result: unknown): string {
  if (result === null || result === undefined) return "done";
  if (typeof result === "string") return result;
  if (typeof result === "object") {
    const values = Object.values(result as Record<string, unknown>);
    if (values.length && values.every((v) => typeof v === "string")) return [...new Set(values)].join(", ");
  }
  return JSON.stringify(result);
}
