// Notifications: what the hub keeps until dismissed (notify.persistent, and every delivery
// that failed for good), live; operators mark them read or dismiss them.

import { html, nothing } from "lit";
import { customElement, state } from "lit/decorators.js";
import { api, type HubNotification } from "../api.js";
import { LightElement } from "../base.js";
import { LocaleController, t } from "../i18n.js";
import { session } from "../session.js";
import { confirmAction, errorMessage, EventsController, fmtTime, Loader, notify, renderFilters, renderLoad } from "../ui.js";

const FILTERS = ["all", "unread", "failed", "read"] as const;
type Filter = (typeof FILTERS)[number];

const STATUS_CLASS: Record<HubNotification["status"], string> = { unread: "warn", read: "ok", failed: "bad" };

@customElement("ev-notifications")
export class NotificationsPage extends LightElement {
  @state() private filter: Filter = "all";
  @state() private busy: string | null = null;
  private notifications = new Loader(this, () => api.get<HubNotification[]>("/api/notifications"));

  constructor() {
    super();
    new LocaleController(this);
    new EventsController(this, ["persistent_notifications_updated"], () => void this.notifications.reload(), 300);
  }

  private heading(item: HubNotification): string {
    return item.title || t("notifications.untitled");
  }

  private async act(item: HubNotification, action: "read" | "dismiss"): Promise<void> {
    if (
      action === "dismiss" &&
      !(await confirmAction(
        t("notifications.dismiss_title"),
        t("notifications.dismiss_message", { title: this.heading(item) }),
        t("notifications.dismiss"),
      ))
    ) {
      return;
    }
    this.busy = item.id;
    try {
      await api.post(`/api/notifications/${encodeURIComponent(item.id)}/${action}`);
      notify(action === "read" ? t("notifications.marked_read") : t("notifications.dismissed"));
    } catch (err) {
      const what = action === "read" ? t("notifications.mark_read") : t("notifications.dismiss");
      notify(t("admin.failed", { what, reason: errorMessage(err) }), "error");
    } finally {
      this.busy = null;
      await this.notifications.reload();
    }
  }

  private renderItem(item: HubNotification) {
    const busy = this.busy === item.id;
    return html`<li class="card alert notification status-${item.status}" data-notification-id=${item.id} data-status=${item.status}>
      <header>
        <span class="badge ${STATUS_CLASS[item.status]}" data-status-badge>${t(`notifications.status_${item.status}`)}</span>
        <strong>${this.heading(item)}</strong>
        <span class="muted small">${fmtTime(item.created_at)}</span>
      </header>
      <p class="notification-message">${item.message}</p>
      ${item.notifier ? html`<p class="muted small">${t("notifications.via", { notifier: item.notifier })}</p>` : nothing}
      ${session.canOperate
        ? html`<div class="button-row">
            ${item.status === "unread"
              ? html`<button class="small" data-action="read" ?disabled=${busy} @click=${() => this.act(item, "read")}>${t("notifications.mark_read")}</button>`
              : nothing}
            <button class="small secondary" data-action="dismiss" ?disabled=${busy} @click=${() => this.act(item, "dismiss")}>${t("notifications.dismiss")}</button>
          </div>`
        : nothing}
    </li>`;
  }

  private renderList(items: HubNotification[]) {
    const shown = items.filter((item) => this.filter === "all" || item.status === this.filter);
    const unread = items.filter((item) => item.status === "unread").length;
    const failed = items.filter((item) => item.status === "failed").length;
    return html`
      <p class="muted" data-counts data-unread=${unread} data-failed=${failed}>
        ${t("notifications.counts", { count: items.length, unread, failed })}
      </p>
      ${shown.length === 0
        ? html`<p class="muted">${items.length === 0 ? t("notifications.none") : t("notifications.none_match")}</p>`
        : html`<ul class="cards notification-list">${shown.map((item) => this.renderItem(item))}</ul>`}
    `;
  }

  override render() {
    return html`
      <h1>${t("notifications.title")}</h1>
      <p class="muted small">${t("notifications.explain")}</p>
      <div class="toolbar">
        ${renderFilters(
          FILTERS,
          this.filter,
          t("notifications.filter_label"),
          (f) => t(`notifications.filter_${f}`),
          (f) => (this.filter = f),
        )}
      </div>
      ${renderLoad(this.notifications, (items) => this.renderList(items), t("notifications.what"))}
    `;
  }
}
