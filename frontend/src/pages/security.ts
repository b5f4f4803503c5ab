// Security events: refused connections, bad credentials, what chargers report.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import { api, query, type SecurityEvent } from "../api.js";
import { LightElement } from "../base.js";
import { EventsController, fmtTime, Loader, renderLoad } from "../ui.js";

@customElement("ev-security")
export class SecurityPage extends LightElement {
  @state() private kind = "";
  private events = new Loader(this, () =>
    api.get<SecurityEvent[]>("/api/security/events" + query({ limit: 200, kind: this.kind })),
  );

  constructor() {
    super();
    new EventsController(this, ["security_event"], () => void this.events.reload());
  }

  private renderTable(events: SecurityEvent[]) {
    if (events.length === 0) return html`<p class="muted">No security events${this.kind ? ` of kind ${this.kind}` : ""}.</p>`;
    const sorted = [...events].sort((a, b) => b.time - a.time);
    return html`<table class="data responsive">
      <thead><tr><th>Time</th><th>Severity</th><th>Kind</th><th>Charger</th><th>Remote</th><th>Message</th></tr></thead>
      <tbody>
        ${sorted.map(
          (e) => html`<tr class="sev-${e.severity}">
            <td data-label="Time">${fmtTime(e.time)}</td>
            <td data-label="Severity"><span class="badge sev">${e.severity}</span></td>
            <td data-label="Kind"><a href="#/security" @click=${(ev: Event) => { ev.preventDefault(); this.filterKind(e.kind); }}>${e.kind}</a></td>
            <td data-label="Charger">${e.charge_point_id ?? "—"}</td>
            <td data-label="Remote">${e.remote ?? "—"}</td>
            <td data-label="Message">${e.message}${typeof e.data?.username === "string"
              ? html` <span class="muted">(as “${e.data.username}”)</span>`
              : null}</td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  private filterKind(kind: string): void {
    this.kind = kind;
    void this.events.reload();
  }

  override render() {
    return html`
      <h1>Security events</h1>
      ${this.kind
        ? html`<p>Showing kind <strong>${this.kind}</strong> <button class="small secondary" @click=${() => this.filterKind("")}>Show all</button></p>`
        : null}
      ${renderLoad(this.events, (e) => this.renderTable(e), "The security log")}
    `;
  }
}
