// Uptime exclusions: list, add, edit and remove the periods taken out of a port's, a
// station's or the site's downtime (maintenance, a utility outage, vandalism...), each with
// its reason and time span. Operators change them; everyone sees them.

import { html } from "lit";
import { customElement, property, state } from "lit/decorators.js";
import { api, EXCLUSION_REASONS, LOCK_REASONS, query, type Exclusion } from "../api.js";
import { LightElement } from "../base.js";
import { t, tMaybe } from "../i18n.js";
import { session } from "../session.js";
import { confirmAction, errorMessage, EventsController, fmtTime, Loader, notify, renderLoad } from "../ui.js";

/** Something an exclusion can cover: a station or a port (device id), or the site (""). */
export interface ExclusionTarget {
  id: string;
  label: string;
}

const DAY_MS = 86_400_000;
// How far back the list reaches (older exclusions stay in the reports and the API).
const LIST_DAYS = 90;

/** A reason in words. */
export function reasonLabel(reason: string): string {
  const fallback = LOCK_REASONS.find((r) => r.value === reason)?.label ?? reason;
  return tMaybe(`reason.${reason}`, fallback);
}

/** An ISO time as the value of a datetime-local input (the browser's zone), "" for none. */
function toLocalInput(value: string | null): string {
  if (!value) return "";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

/** A datetime-local value (the browser's zone) as an ISO time the hub reads unambiguously. */
function fromLocalInput(value: string): string | null {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** Whether an exclusion applies to a station (itself, one of its ports, or the whole site). */
export function exclusionCovers(x: Exclusion, stationId: string, portIds: Iterable<string>): boolean {
  if (x.port_id === null && x.station_id === null) return true;
  if (x.port_id === null) return x.station_id === stationId;
  return [...portIds].includes(x.port_id);
}

@customElement("ev-exclusions")
export class ExclusionsSection extends LightElement {
  /** What the form may target; the first is the default. */
  @property({ attribute: false }) targets: ExclusionTarget[] = [];
  /** Only the exclusions of this station (and its ports, and the site's); "" for all. */
  @property() stationId = "";
  /** Called after a change (the page reloads its figures and timeline). */
  @property({ attribute: false }) changed: (() => void) | null = null;
  @state() private editing: Exclusion | null = null;
  @state() private formOpen = false;
  @state() private busy = false;
  @state() private error: string | null = null;

  private list = new Loader(this, () => {
    const now = Date.now();
    return api.get<Exclusion[]>(
      "/api/uptime/exclusions" +
        query({ start: new Date(now - LIST_DAYS * DAY_MS).toISOString(), end: new Date(now + 3650 * DAY_MS).toISOString() }),
    );
  });

  constructor() {
    super();
    new EventsController(this, ["uptime_exclusion"], () => void this.list.reload(), 300);
  }

  private visible(all: Exclusion[]): Exclusion[] {
    if (!this.stationId) return all;
    const ports = this.targets.map((target) => target.id);
    return all.filter((x) => exclusionCovers(x, this.stationId, ports));
  }

  private open(exclusion: Exclusion | null): void {
    this.editing = exclusion;
    this.formOpen = true;
    this.error = null;
  }

  private close(): void {
    this.formOpen = false;
    this.editing = null;
    this.error = null;
  }

  private async submit(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const start = fromLocalInput(String(form.get("start") ?? ""));
    const endText = String(form.get("end") ?? "");
    const end = fromLocalInput(endText);
    if (start === null) {
      this.error = t("excl.start_required");
      return;
    }
    if (endText && end === null) {
      this.error = t("excl.bad_end");
      return;
    }
    if (end !== null && new Date(end) <= new Date(start)) {
      this.error = t("excl.end_before_start");
      return;
    }
    const target = String(form.get("target") ?? "");
    const note = String(form.get("note") ?? "").trim();
    const body: Record<string, unknown> = {
      start,
      end,
      reason: String(form.get("reason") ?? "maintenance"),
      note: note || null,
    };
    if (target) body.device_id = target;
    this.busy = true;
    this.error = null;
    try {
      const editing = this.editing;
      if (editing) {
        await api.patch<Exclusion>(`/api/uptime/exclusions/${encodeURIComponent(editing.exclusion_id)}`, body);
        notify(t("excl.saved"));
      } else {
        await api.post<Exclusion>("/api/uptime/exclusions", body);
        notify(t("excl.added"));
      }
      this.close();
      await this.list.reload();
      this.changed?.();
    } catch (err) {
      this.error = errorMessage(err);
    } finally {
      this.busy = false;
    }
  }

  private async removeExclusion(x: Exclusion): Promise<void> {
    const span = `${fmtTime(x.start)} – ${x.end ? fmtTime(x.end) : t("excl.open_ended")}`;
    const ok = await confirmAction(
      t("excl.delete_title"),
      t("excl.delete_message", { target: this.targetName(x), reason: reasonLabel(x.reason), span }),
      t("common.delete"),
    );
    if (!ok) return;
    try {
      await api.delete(`/api/uptime/exclusions/${encodeURIComponent(x.exclusion_id)}`);
      notify(t("excl.deleted"));
      await this.list.reload();
      this.changed?.();
    } catch (err) {
      notify(t("excl.delete_failed", { reason: errorMessage(err) }), "error");
    }
  }

  private targetName(x: Exclusion): string {
    if (x.port_id === null && x.station_id === null) return t("excl.site");
    return this.targets.find((target) => target.id === (x.port_id ?? x.station_id))?.label ?? x.target;
  }

  private renderForm() {
    const x = this.editing;
    const current = x ? (x.port_id ?? x.station_id ?? "") : (this.targets[0]?.id ?? "");
    const defaultStart = toLocalInput(new Date().toISOString());
    return html`<form class="exclusion-form card inset" data-form="exclusion" @submit=${this.submit}>
      <h3>${x ? t("excl.edit_title") : t("excl.add_title")}</h3>
      <div class="form-grid">
        <label>${t("excl.target")}
          <select name="target" data-field="target">
            ${this.targets.map((target) => html`<option value=${target.id} ?selected=${target.id === current}>${target.label}</option>`)}
          </select>
        </label>
        <label>${t("excl.reason")}
          <select name="reason" data-field="reason" required>
            ${EXCLUSION_REASONS.map((r) => html`<option value=${r} ?selected=${x ? x.reason === r : r === "maintenance"}>${reasonLabel(r)}</option>`)}
          </select>
        </label>
        <label>${t("excl.from")}
          <input type="datetime-local" name="start" data-field="start" required .value=${x ? toLocalInput(x.start) : defaultStart} />
        </label>
        <label>${t("excl.until")}
          <input type="datetime-local" name="end" data-field="end" .value=${x ? toLocalInput(x.end) : ""} />
          <small class="muted">${t("excl.until_hint")}</small>
        </label>
        <label class="wide">${t("excl.note")}
          <input type="text" name="note" data-field="note" maxlength="1000" .value=${x?.note ?? ""} />
        </label>
      </div>
      ${this.error ? html`<p class="error-box" role="alert">${this.error}</p>` : null}
      <div class="button-row">
        <button type="submit" class="primary" data-action="save-exclusion" ?disabled=${this.busy}>${x ? t("common.save") : t("excl.add")}</button>
        <button type="button" class="secondary" @click=${() => this.close()}>${t("common.cancel")}</button>
      </div>
    </form>`;
  }

  private renderList(all: Exclusion[]) {
    const list = this.visible(all);
    const operate = session.canOperate;
    if (list.length === 0) return html`<p class="muted" data-empty>${t("excl.none", { days: LIST_DAYS })}</p>`;
    return html`<table class="data responsive" data-table="exclusions">
      <thead><tr><th>${t("excl.target")}</th><th>${t("excl.reason")}</th><th>${t("excl.from")}</th><th>${t("excl.until")}</th><th>${t("excl.note")}</th>${operate ? html`<th></th>` : null}</tr></thead>
      <tbody>
        ${list.map(
          (x) => html`<tr data-exclusion-id=${x.exclusion_id}>
            <td data-label=${t("excl.target")}>${this.targetName(x)}</td>
            <td data-label=${t("excl.reason")} data-reason=${x.reason}>${reasonLabel(x.reason)}</td>
            <td data-label=${t("excl.from")}>${fmtTime(x.start)}</td>
            <td data-label=${t("excl.until")}>${x.end ? fmtTime(x.end) : html`<span class="badge warn">${t("excl.open_ended")}</span>`}</td>
            <td data-label=${t("excl.note")} class="wrap">${x.note ?? "—"}</td>
            ${operate
              ? html`<td class="actions-cell"><div class="button-row small">
                  <button class="small" data-action="edit-exclusion" @click=${() => this.open(x)}>${t("common.edit")}</button>
                  <button class="small danger" data-action="delete-exclusion" @click=${() => void this.removeExclusion(x)}>${t("common.delete")}</button>
                </div></td>`
              : null}
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  override render() {
    return html`
      <p class="muted small">${t("excl.explain")}</p>
      ${renderLoad(this.list, (all) => this.renderList(all), t("excl.what"))}
      ${session.canOperate
        ? this.formOpen
          ? this.renderForm()
          : html`<p><button data-action="add-exclusion" @click=${() => this.open(null)}>${t("excl.add")}</button></p>`
        : null}
    `;
  }
}
