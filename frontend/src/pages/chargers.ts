// Chargers: every station with its live status, a health filter and a search box; an operator
// gives a station its name and site.

import { html, nothing } from "lit";
import { customElement, state } from "lit/decorators.js";
import { api, type Site, type Station } from "../api.js";
import { LightElement } from "../base.js";
import { LocaleController, t } from "../i18n.js";
import {
  portPower,
  portStatus,
  stationConnectivity,
  stationFirmware,
  stationHealth,
} from "../model.js";
import { session } from "../session.js";
import {
  badge,
  confirmDialog,
  dialogField,
  errorMessage,
  EventsController,
  fmtAgo,
  fmtPower,
  LiveController,
  Loader,
  notify,
  renderFilters,
  renderLoad,
} from "../ui.js";

const FILTERS = ["all", "online", "offline", "faulted", "pending"] as const;
type Filter = (typeof FILTERS)[number];

function hashParam(name: string): string | null {
  const queryText = location.hash.split("?")[1] ?? "";
  return new URLSearchParams(queryText).get(name);
}

/** What the name-and-site dialog gives: the name, and the site's name (null: no site). */
export interface NameAndSite {
  name: string;
  site: string | null;
}

/**
 * Ask for a station's name and site (an existing site offered, or a new name); null when
 * cancelled. The name may stay empty when optional (approving a charger).
 */
export async function askNameAndSite(
  title: string,
  message: string,
  current: { name: string; site: string | null },
  options: { confirmLabel: string; nameOptional?: boolean },
): Promise<NameAndSite | null> {
  let sites: Site[] = [];
  try {
    sites = await api.get<Site[]>("/api/sites");
  } catch {
    sites = []; // a hub without the sites list: a site is typed
  }
  const name = document.createElement("input");
  name.name = "station-name";
  name.maxLength = 100;
  name.value = current.name;
  name.autocomplete = "off";
  const site = document.createElement("input");
  site.name = "station-site";
  site.maxLength = 100;
  site.value = current.site ?? "";
  site.autocomplete = "off";
  const list = document.createElement("datalist");
  list.id = `site-options-${Math.random().toString(36).slice(2)}`;
  for (const known of new Set(sites.map((s) => s.name).filter((n): n is string => Boolean(n)))) {
    const option = document.createElement("option");
    option.value = known;
    list.append(option);
  }
  site.setAttribute("list", list.id);
  const answer = await confirmDialog(title, message, {
    confirmLabel: options.confirmLabel,
    className: "form-dialog",
    fields: [
      dialogField(t("chargers.name"), name, options.nameOptional ? t("chargers.name_optional") : undefined),
      dialogField(t("chargers.site"), site, t("chargers.site_hint")),
      list,
    ],
    focus: name,
    collect: () => ({ name: name.value.trim(), site: site.value.trim() || null }),
  });
  return answer;
}

/** PATCH a station's name and site; what changed only. Returns the station as answered. */
export async function saveNameAndSite(
  deviceId: string,
  wanted: NameAndSite,
  current: { name: string | null; site: string | null },
): Promise<Station | null> {
  const body: Record<string, unknown> = {};
  if (wanted.name && wanted.name !== current.name) body.name = wanted.name;
  if (wanted.site !== current.site) body.site = wanted.site;
  if (Object.keys(body).length === 0) return null;
  return api.patch<Station>(`/api/devices/${encodeURIComponent(deviceId)}`, body);
}

@customElement("ev-chargers")
export class ChargersPage extends LightElement {
  private stations = new Loader(this, () => api.get<Station[]>("/api/chargers"));
  @state() private filter: Filter = (FILTERS as readonly string[]).includes(hashParam("filter") ?? "")
    ? (hashParam("filter") as Filter)
    : "all";
  @state() private search = "";
  @state() private busy: string | null = null;

  constructor() {
    super();
    new LocaleController(this);
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

  private async edit(station: Station): Promise<void> {
    const wanted = await askNameAndSite(
      t("chargers.edit_title", { name: station.name }),
      t("chargers.edit_message", { id: station.charge_point_id ?? station.device_id }),
      { name: station.name, site: station.site },
      { confirmLabel: t("common.save") },
    );
    if (!wanted) return;
    if (!wanted.name) {
      notify(t("chargers.name_required"), "error");
      return;
    }
    this.busy = station.device_id;
    try {
      const saved = await saveNameAndSite(station.device_id, wanted, station);
      if (saved) notify(t("chargers.saved", { name: saved.name }));
      await this.stations.reload();
    } catch (err) {
      notify(t("chargers.save_failed", { reason: errorMessage(err) }), "error");
    } finally {
      this.busy = null;
    }
  }

  private renderTable(stations: Station[]) {
    const shown = stations.filter((s) => this.shows(s));
    const operate = session.canOperate;
    return html`
      <p class="muted" data-shown=${shown.length}>${t("chargers.shown", { shown: shown.length, count: stations.length })}</p>
      ${shown.length === 0
        ? html`<p class="muted">${stations.length === 0 ? t("chargers.none") : t("chargers.no_match")}</p>`
        : html`<table class="data responsive chargers-table">
            <thead>
              <tr>
                <th>${t("chargers.col_charger")}</th><th>${t("chargers.col_connection")}</th><th>${t("chargers.col_ports")}</th>
                <th class="num">${t("chargers.col_power")}</th><th>${t("chargers.col_firmware")}</th><th>${t("chargers.col_last_seen")}</th>
                ${operate ? html`<th></th>` : nothing}
              </tr>
            </thead>
            <tbody>
              ${shown.map((station) => {
                const power = station.ports.reduce((sum, p) => sum + (portPower(p) ?? 0), 0);
                return html`<tr data-device-id=${station.device_id} data-charge-point-id=${station.charge_point_id ?? ""}>
                  <td data-label=${t("chargers.col_charger")}>
                    <a href="#/chargers/${encodeURIComponent(station.device_id)}">${station.name}</a>
                    <div class="muted small">${station.charge_point_id ?? ""} ${station.vendor ?? ""} ${station.model ?? ""}</div>
                    ${station.site ? html`<div class="muted small" data-site>${t("chargers.site_label", { site: station.site })}</div>` : nothing}
                  </td>
                  <td data-label=${t("chargers.col_connection")}>${badge(stationConnectivity(station))}</td>
                  <td data-label=${t("chargers.col_ports")} class="ports">
                    ${station.ports.length === 0
                      ? html`<span class="muted">—</span>`
                      : station.ports.map(
                          (p) => html`<span class="port-chip" data-port=${p.number} title=${p.name}>${p.number}: ${badge(portStatus(p))}</span>`,
                        )}
                  </td>
                  <td data-label=${t("chargers.col_power")} class="num">${fmtPower(power)}</td>
                  <td data-label=${t("chargers.col_firmware")}>${stationFirmware(station) ?? "—"}</td>
                  <td data-label=${t("chargers.col_last_seen")}>${fmtAgo(station.last_seen)}</td>
                  ${operate
                    ? html`<td data-label="">
                        <button class="small secondary" data-action="edit" ?disabled=${this.busy === station.device_id} @click=${() => this.edit(station)}>${t("chargers.edit")}</button>
                      </td>`
                    : nothing}
                </tr>`;
              })}
            </tbody>
          </table>`}
    `;
  }

  override render() {
    return html`
      <h1>${t("chargers.title")}</h1>
      <div class="toolbar">
        <label class="search">
          <span class="visually-hidden">${t("chargers.search")}</span>
          <input
            type="search"
            placeholder=${t("chargers.search_placeholder")}
            .value=${this.search}
            @input=${(e: InputEvent) => (this.search = (e.target as HTMLInputElement).value)}
          />
        </label>
        ${renderFilters(
          FILTERS,
          this.filter,
          t("chargers.filter_label"),
          (f) => t(`chargers.filter_${f}`),
          (f) => (this.filter = f),
        )}
      </div>
      ${renderLoad(this.stations, (s) => this.renderTable(s), t("chargers.what"))}
    `;
  }
}
