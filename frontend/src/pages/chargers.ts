// Chargers: every station with its live status, a health filter and a search box.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import { api, type Station } from "../api.js";
import { LightElement } from "../base.js";
import {
  portPower,
  portStatus,
  stationConnectivity,
  stationFirmware,
  stationHealth,
} from "../model.js";
import { badge, EventsController, fmtAgo, fmtPower, LiveController, Loader, renderLoad } from "../ui.js";

const FILTERS = ["all", "online", "offline", "faulted", "pending"] as const;
type Filter = (typeof FILTERS)[number];

function hashParam(name: string): string | null {
  const queryText = location.hash.split("?")[1] ?? "";
  return new URLSearchParams(queryText).get(name);
}

@customElement("ev-chargers")
export class ChargersPage extends LightElement {
  private stations = new Loader(this, () => api.get<Station[]>("/api/chargers"));
  @state() private filter: Filter = (FILTERS as readonly string[]).includes(hashParam("filter") ?? "")
    ? (hashParam("filter") as Filter)
    : "all";
  @state() private search = "";

  constructor() {
    super();
    new LiveController(this);
    // New stations and new entities of known ones come with registry updates.
    new EventsController(
      this,
      ["device_registry_updated", "entity_registry_updated"],
      () => void this.stations.reload(),
      1000,
    );
  }

  private shows(station: Station): boolean {
    if (this.filter !== "all" && stationHealth(station) !== this.filter) return false;
    const needle = this.search.trim().toLowerCase();
    if (!needle) return true;
    return [station.name, station.charge_point_id, station.vendor, station.model, station.serial, station.site]
      .filter(Boolean)
      .some((field) => String(field).toLowerCase().includes(needle));
  }

  private renderTable(stations: Station[]) {
    const shown = stations.filter((s) => this.shows(s));
    return html`
      <p class="muted" data-shown=${shown.length}>${shown.length} of ${stations.length} chargers</p>
      ${shown.length === 0
        ? html`<p class="muted">${stations.length === 0 ? "No chargers yet." : "No charger matches."}</p>`
        : html`<table class="data responsive chargers-table">
            <thead>
              <tr>
                <th>Charger</th><th>Connection</th><th>Ports</th><th class="num">Power</th>
                <th>Firmware</th><th>Last seen</th>
              </tr>
            </thead>
            <tbody>
              ${shown.map((station) => {
                const power = station.ports.reduce((sum, p) => sum + (portPower(p) ?? 0), 0);
                return html`<tr data-device-id=${station.device_id} data-charge-point-id=${station.charge_point_id ?? ""}>
                  <td data-label="Charger">
                    <a href="#/chargers/${encodeURIComponent(station.device_id)}">${station.name}</a>
                    <div class="muted small">${station.charge_point_id ?? ""} ${station.vendor ?? ""} ${station.model ?? ""}</div>
                  </td>
                  <td data-label="Connection">${badge(stationConnectivity(station))}</td>
                  <td data-label="Ports" class="ports">
                    ${station.ports.length === 0
                      ? html`<span class="muted">—</span>`
                      : station.ports.map(
                          (p) => html`<span class="port-chip" data-port=${p.number} title=${p.name}>${p.number}: ${badge(portStatus(p))}</span>`,
                        )}
                  </td>
                  <td data-label="Power" class="num">${fmtPower(power)}</td>
                  <td data-label="Firmware">${stationFirmware(station) ?? "—"}</td>
                  <td data-label="Last seen">${fmtAgo(station.last_seen)}</td>
                </tr>`;
              })}
            </tbody>
          </table>`}
    `;
  }

  override render() {
    return html`
      <h1>Chargers</h1>
      <div class="toolbar">
        <label class="search">
          <span class="visually-hidden">Search</span>
          <input
            type="search"
            placeholder="Search name, id, vendor…"
            .value=${this.search}
            @input=${(e: InputEvent) => (this.search = (e.target as HTMLInputElement).value)}
          />
        </label>
        <div class="segmented" role="group" aria-label="Filter by health">
          ${FILTERS.map(
            (f) => html`<button
              class=${this.filter === f ? "active" : ""}
              aria-pressed=${this.filter === f ? "true" : "false"}
              data-filter=${f}
              @click=${() => (this.filter = f)}
            >${f}</button>`,
          )}
        </div>
      </div>
      ${renderLoad(this.stations, (s) => this.renderTable(s), "The charger list")}
    `;
  }
}
