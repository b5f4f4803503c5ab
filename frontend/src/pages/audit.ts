// Audit log: who did what, from where, with what result.

import { html } from "lit";
import { customElement } from "lit/decorators.js";
import { api, type AuditEntry } from "../api.js";
import { LightElement } from "../base.js";
import { EventsController, fmtTime, Loader, renderLoad } from "../ui.js";

function text(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

@customElement("ev-audit")
export class AuditPage extends LightElement {
  private entries = new Loader(this, () => api.get<AuditEntry[]>("/api/audit?limit=200"));

  constructor() {
    super();
    new EventsController(this, ["audit_entry"], () => void this.entries.reload(), 300);
  }

  private renderTable(entries: AuditEntry[]) {
    if (entries.length === 0) return html`<p class="muted">Nothing audited yet.</p>`;
    return html`<table class="data responsive audit">
      <thead><tr><th>Time</th><th>User</th><th>Source</th><th>Action</th><th>Target</th><th>Result</th></tr></thead>
      <tbody>
        ${entries.map(
          (e) => html`<tr data-action=${e.action}>
            <td data-label="Time">${fmtTime(e.time)}</td>
            <td data-label="User">${e.username ?? e.user_id ?? "—"}</td>
            <td data-label="Source">${e.source}</td>
            <td data-label="Action"><code>${e.action}</code></td>
            <td data-label="Target" class="wrap">${text(e.target)}</td>
            <td data-label="Result" class="wrap">${text(e.result)}</td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  override render() {
    return html`
      <h1>Audit log</h1>
      <p><button class="small secondary" @click=${() => void this.entries.reload()}>Refresh</button></p>
      ${renderLoad(this.entries, (e) => this.renderTable(e), "The audit log")}
    `;
  }
}
