// Chargers that connected without being known: approve or reject them.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import { api, type PendingCharger } from "../api.js";
import { LightElement } from "../base.js";
import { session } from "../session.js";
import { confirmAction, errorMessage, EventsController, fmtTime, Loader, notify, renderLoad } from "../ui.js";

@customElement("ev-pending")
export class PendingPage extends LightElement {
  @state() private busy: string | null = null;
  private pending = new Loader(this, () => api.get<PendingCharger[]>("/api/pending_chargers"));

  constructor() {
    super();
    new EventsController(this, ["charger_event", "security_event"], () => void this.pending.reload(), 1000);
  }

  private async decide(charger: PendingCharger, action: "approve" | "reject"): Promise<void> {
    const verb = action === "approve" ? "Approve" : "Reject";
    const message =
      action === "approve"
        ? `Admit ${charger.charge_point_id}? The key it presented becomes its password.`
        : `Refuse ${charger.charge_point_id} now and later?`;
    if (!(await confirmAction(`${verb} charger`, message, verb))) return;
    this.busy = charger.charge_point_id;
    try {
      await api.post(`/api/pending_chargers/${encodeURIComponent(charger.charge_point_id)}/${action}`, {});
      notify(`${verb}d ${charger.charge_point_id}`);
      await this.pending.reload();
    } catch (err) {
      notify(`${verb} failed: ${errorMessage(err)}`, "error");
    } finally {
      this.busy = null;
    }
  }

  private renderList(chargers: PendingCharger[]) {
    if (chargers.length === 0) return html`<p class="muted">No charger is waiting for approval.</p>`;
    return html`<table class="data responsive">
      <thead><tr><th>Charge point id</th><th>Remote</th><th>First seen</th><th></th></tr></thead>
      <tbody>
        ${chargers.map(
          (c) => html`<tr data-charge-point-id=${c.charge_point_id}>
            <td data-label="Charge point id"><strong>${c.charge_point_id}</strong></td>
            <td data-label="Remote">${c.remote ?? "—"}</td>
            <td data-label="First seen">${fmtTime(c.first_seen)}</td>
            <td data-label="">
              ${session.canOperate
                ? html`<div class="button-row">
                    <button class="primary small" data-action="approve" ?disabled=${this.busy === c.charge_point_id} @click=${() => this.decide(c, "approve")}>Approve</button>
                    <button class="danger small" data-action="reject" ?disabled=${this.busy === c.charge_point_id} @click=${() => this.decide(c, "reject")}>Reject</button>
                  </div>`
                : null}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  override render() {
    return html`
      <h1>Pending chargers</h1>
      ${renderLoad(this.pending, (c) => this.renderList(c), "The pending charger list")}
    `;
  }
}
