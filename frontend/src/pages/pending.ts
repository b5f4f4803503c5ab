// Chargers that connected without being known, with what each said of itself at boot:
// approve them (with a name and a site) or reject them.

import { html, nothing } from "lit";
import { customElement, state } from "lit/decorators.js";
import { api, type PendingCharger } from "../api.js";
import { LightElement } from "../base.js";
import { LocaleController, t } from "../i18n.js";
import { session } from "../session.js";
import { confirmAction, errorMessage, EventsController, fmtTime, Loader, notify, renderLoad } from "../ui.js";
import { askNameAndSite, saveNameAndSite } from "./chargers.js";

@customElement("ev-pending")
export class PendingPage extends LightElement {
  @state() private busy: string | null = null;
  private pending = new Loader(this, () => api.get<PendingCharger[]>("/api/pending_chargers"));

  constructor() {
    super();
    new LocaleController(this);
    new EventsController(
      this,
      ["charger_event", "security_event", "device_registry_updated"],
      () => void this.pending.reload(),
      1000,
    );
  }

  private async approve(charger: PendingCharger): Promise<void> {
    const id = charger.charge_point_id;
    const wanted = await askNameAndSite(
      t("pending.approve_title"),
      t("pending.approve_message", { id }),
      { name: "", site: null },
      { confirmLabel: t("pending.approve"), nameOptional: true },
    );
    if (!wanted) return;
    this.busy = id;
    try {
      await api.post(`/api/pending_chargers/${encodeURIComponent(id)}/approve`, {});
      await this.pending.reload();
      const named = wanted.name || wanted.site;
      if (named && charger.device_id) {
        try {
          await saveNameAndSite(charger.device_id, wanted, { name: null, site: null });
        } catch (err) {
          notify(t("pending.name_failed", { id, reason: errorMessage(err) }), "error");
          return;
        }
      }
      notify(wanted.name ? t("pending.approved_named", { id, name: wanted.name }) : t("pending.approved", { id }));
    } catch (err) {
      notify(t("pending.approve_failed", { id, reason: errorMessage(err) }), "error");
    } finally {
      this.busy = null;
    }
  }

  private async reject(charger: PendingCharger): Promise<void> {
    const id = charger.charge_point_id;
    if (!(await confirmAction(t("pending.reject_title"), t("pending.reject_message", { id }), t("pending.reject")))) {
      return;
    }
    this.busy = id;
    try {
      await api.post(`/api/pending_chargers/${encodeURIComponent(id)}/reject`, {});
      notify(t("pending.rejected", { id }));
    } catch (err) {
      notify(t("pending.reject_failed", { id, reason: errorMessage(err) }), "error");
    } finally {
      this.busy = null;
      await this.pending.reload();
    }
  }

  private renderList(chargers: PendingCharger[]) {
    if (chargers.length === 0) return html`<p class="muted">${t("pending.none")}</p>`;
    return html`<table class="data responsive pending-table">
      <thead>
        <tr>
          <th>${t("pending.col_id")}</th><th>${t("pending.col_vendor")}</th><th>${t("pending.col_serial")}</th>
          <th>${t("pending.col_remote")}</th><th>${t("pending.col_first_seen")}</th><th></th>
        </tr>
      </thead>
      <tbody>
        ${chargers.map((c) => {
          const said = [c.vendor, c.model].filter(Boolean).join(" ");
          return html`<tr data-charge-point-id=${c.charge_point_id}>
            <td data-label=${t("pending.col_id")}><strong>${c.charge_point_id}</strong></td>
            <td data-label=${t("pending.col_vendor")} data-vendor-model>${said || html`<span class="muted" title=${t("pending.no_boot")}>—</span>`}</td>
            <td data-label=${t("pending.col_serial")} data-serial>${c.serial ?? "—"}</td>
            <td data-label=${t("pending.col_remote")}>${c.remote ?? t("pending.not_connected")}</td>
            <td data-label=${t("pending.col_first_seen")}>${fmtTime(c.first_seen)}</td>
            <td data-label="">
              ${session.canOperate
                ? html`<div class="button-row">
                    <button class="primary small" data-action="approve" ?disabled=${this.busy === c.charge_point_id} @click=${() => this.approve(c)}>${t("pending.approve")}</button>
                    <button class="danger small" data-action="reject" ?disabled=${this.busy === c.charge_point_id} @click=${() => this.reject(c)}>${t("pending.reject")}</button>
                  </div>`
                : nothing}
            </td>
          </tr>`;
        })}
      </tbody>
    </table>`;
  }

  override render() {
    return html`
      <h1>${t("pending.title")}</h1>
      <p class="muted small">${t("pending.explain")}</p>
      ${renderLoad(this.pending, (c) => this.renderList(c), t("pending.what"))}
    `;
  }
}
