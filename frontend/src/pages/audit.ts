// Audit log: who did what to what (by name), from where, with what result, and what was sent
// (a limit, a reset type; secrets redacted by the hub).

import { html } from "lit";
import { customElement } from "lit/decorators.js";
import { api, type AuditEntry } from "../api.js";
import { LightElement } from "../base.js";
import { reasonLabel } from "../components/exclusions.js";
import { fmtNumber, t, tMaybe } from "../i18n.js";
import { EventsController, fmtTime, Loader, renderLoad } from "../ui.js";

function text(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

// Ids the target column names already; the data column shows what else was sent.
const ID_KEYS = new Set(["device_id", "entity_id", "exclusion_id", "alert", "automation_id"]);

/** One value sent, for people: numbers in the locale, reasons and types in words. */
function valueText(key: string, value: unknown): string {
  if (value === null) return "—";
  if (typeof value === "number") return fmtNumber(value, 3);
  if (typeof value === "boolean") return value ? t("common.yes") : t("common.no");
  if (typeof value === "string") {
    if (key === "reason") return reasonLabel(value);
    if (key === "type") return tMaybe(`audit.type.${value}`, value);
    if (key === "start" || key === "end") return fmtTime(value);
    return value;
  }
  return JSON.stringify(value);
}

/** What an entry's action sent, as "key: value" pairs (ids left to the target column). */
export function dataPairs(data: Record<string, unknown> | null | undefined): [string, string][] {
  if (!data) return [];
  return Object.entries(data)
    .filter(([key]) => !ID_KEYS.has(key))
    .map(([key, value]): [string, string] => [tMaybe(`audit.key.${key}`, key), valueText(key, value)]);
}

/** The action in words where the catalogue has it ("charger.reset" → "Reset"). */
function actionText(action: string): string {
  return tMaybe(`audit.action.${action}`, action);
}

@customElement("ev-audit")
export class AuditPage extends LightElement {
  private entries = new Loader(this, () => api.get<AuditEntry[]>("/api/audit?limit=200"));

  constructor() {
    super();
    new EventsController(this, ["audit_entry"], () => void this.entries.reload(), 300);
  }

  private renderTable(entries: AuditEntry[]) {
    if (entries.length === 0) return html`<p class="muted">${t("audit.empty")}</p>`;
    const cols = {
      time: t("audit.col_time"),
      user: t("audit.col_user"),
      source: t("audit.col_source"),
      action: t("audit.col_action"),
      target: t("audit.col_target"),
      data: t("audit.col_data"),
      result: t("audit.col_result"),
    };
    return html`<table class="data responsive audit">
      <thead><tr><th>${cols.time}</th><th>${cols.user}</th><th>${cols.source}</th><th>${cols.action}</th><th>${cols.target}</th><th>${cols.data}</th><th>${cols.result}</th></tr></thead>
      <tbody>
        ${entries.map((e) => {
          const pairs = dataPairs(e.data);
          return html`<tr data-action=${e.action}>
            <td data-label=${cols.time}>${fmtTime(e.time)}</td>
            <td data-label=${cols.user}>${e.username ?? e.user_id ?? "—"}</td>
            <td data-label=${cols.source}>${e.source}</td>
            <td data-label=${cols.action}><span title=${e.action}>${actionText(e.action)}</span></td>
            <td data-label=${cols.target} class="wrap" data-target>${text(e.target)}</td>
            <td data-label=${cols.data} class="wrap" data-sent>${pairs.length
              ? html`<dl class="sent">${pairs.map(([key, value]) => html`<dt>${key}</dt><dd>${value}</dd>`)}</dl>`
              : "—"}</td>
            <td data-label=${cols.result} class="wrap">${e.result === "ok" ? t("audit.ok") : text(e.result)}</td>
          </tr>`;
        })}
      </tbody>
    </table>`;
  }

  override render() {
    return html`
      <h1>${t("nav.audit")}</h1>
      <p><button class="small secondary" @click=${() => void this.entries.reload()}>${t("common.refresh")}</button></p>
      ${renderLoad(this.entries, (e) => this.renderTable(e), t("nav.audit"))}
    `;
  }
}
