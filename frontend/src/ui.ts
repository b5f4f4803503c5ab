// Shared page helpers: data loaders with "not available" states, live updates, formatting,
// a confirmation dialog and short notices.

import { html, nothing, type ReactiveController, type ReactiveControllerHost, type TemplateResult } from "lit";
import { ApiError } from "./api.js";
import { fmtDateTime, fmtNumber, fmtRelative, t, tMaybe } from "./i18n.js";
import { session } from "./session.js";

export type LoadState<T> =
  | { kind: "loading" }
  | { kind: "ready"; value: T }
  | { kind: "not_available"; message: string }
  | { kind: "error"; message: string };

/** Runs an async load for a component and re-renders it with the outcome. */
export class Loader<T> implements ReactiveController {
  state: LoadState<T> = { kind: "loading" };
  private generation = 0;

  constructor(
    private readonly host: ReactiveControllerHost,
    private readonly load: () => Promise<T>,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    void this.reload();
  }

  get value(): T | undefined {
    return this.state.kind === "ready" ? this.state.value : undefined;
  }

  /** Load again; keeps showing the previous value until the new one is there. */
  async reload(): Promise<void> {
    const generation = ++this.generation;
    try {
      const value = await this.load();
      if (generation !== this.generation) return;
      this.state = { kind: "ready", value };
    } catch (err) {
      if (generation !== this.generation) return;
      if (err instanceof ApiError && err.notAvailable) {
        this.state = { kind: "not_available", message: err.message };
      } else {
        this.state = { kind: "error", message: err instanceof Error ? err.message : String(err) };
      }
    }
    this.host.requestUpdate();
  }
}

/** Render a loader's value, or its loading / not available / error state. */
export function renderLoad<T>(
  loader: Loader<T>,
  render: (value: T) => unknown,
  what = t("common.this_data"),
): unknown {
  const state = loader.state;
  switch (state.kind) {
    case "loading":
      return html`<p class="muted loading" role="status">${t("common.loading")}</p>`;
    case "not_available":
      return notAvailable(what);
    case "error":
      return html`<p class="error-box" role="alert">${state.message}</p>`;
    case "ready":
      return render(state.value);
  }
}

/** A group of toggle buttons that filter a list, the current one pressed (data-filter: its value). */
export function renderFilters<F extends string>(
  filters: readonly F[],
  current: F,
  label: string,
  text: (filter: F) => string,
  pick: (filter: F) => void,
): TemplateResult {
  return html`<div class="segmented" role="group" aria-label=${label}>
    ${filters.map(
      (f) => html`<button
        class=${current === f ? "active" : ""}
        aria-pressed=${current === f ? "true" : "false"}
        data-filter=${f}
        @click=${() => pick(f)}
      >${text(f)}</button>`,
    )}
  </div>`;
}

export function notAvailable(what: string): TemplateResult {
  return html`<div class="not-available" data-state="not-available">
    <strong>${t("common.not_available")}</strong>
    <span>${t("common.not_offered", { what })}</span>
  </div>`;
}

/** Re-render the host whenever the live entity store changes (optionally only some ids). */
export class LiveController implements ReactiveController {
  private off: (() => void) | null = null;

  constructor(
    private readonly host: ReactiveControllerHost,
    private readonly relevant?: () => Iterable<string>,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    this.off = session.entities.listen((changed) => {
      if (!this.relevant) {
        this.host.requestUpdate();
        return;
      }
      for (const id of this.relevant()) {
        if (changed.has(id)) {
          this.host.requestUpdate();
          return;
        }
      }
    });
  }

  hostDisconnected(): void {
    this.off?.();
    this.off = null;
  }
}

/** Run a callback on hub events of some types while the host is on the page. */
export class EventsController implements ReactiveController {
  private offs: (() => void)[] = [];
  private timer: number | null = null;

  constructor(
    host: ReactiveControllerHost,
    private readonly types: string[],
    private readonly callback: () => void,
    private readonly delayMs = 150,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    const connection = session.connection;
    if (!connection) return;
    for (const type of this.types) {
      this.offs.push(connection.subscribeEvents(() => this.debounced(), type));
    }
  }

  private debounced(): void {
    if (this.timer !== null) return;
    this.timer = window.setTimeout(() => {
      this.timer = null;
      this.callback();
    }, this.delayMs);
  }

  hostDisconnected(): void {
    for (const off of this.offs) off();
    this.offs = [];
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
  }
}

// ---- formatting ----

/** A Date from an ISO string or epoch seconds. */
export function toDate(value: string | number | null | undefined): Date | null {
  if (value === null || value === undefined || value === "") return null;
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function fmtTime(value: string | number | null | undefined): string {
  const date = toDate(value);
  if (!date) return "—";
  return fmtDateTime(date, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** A day ("Dec 6") as it is in a time zone (the hub's), whatever the browser's zone. */
export function fmtDay(value: string | number | null | undefined, timeZone?: string): string {
  const date = toDate(value);
  if (!date) return "";
  return fmtDateTime(date, { month: "short", day: "numeric" }, timeZone);
}

export function fmtAgo(value: string | number | null | undefined): string {
  const date = toDate(value);
  if (!date) return "—";
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 5) return t("time.just_now");
  if (seconds < 60) return fmtRelative(-seconds, "second");
  if (seconds < 3600) return fmtRelative(-Math.round(seconds / 60), "minute");
  if (seconds < 86400) return fmtRelative(-Math.round(seconds / 3600), "hour");
  return fmtRelative(-Math.round(seconds / 86400), "day");
}

export function fmtPct(value: number | null | undefined, digits = 2): string {
  return value === null || value === undefined || Number.isNaN(value) ? "—" : `${fmtNumber(value, digits, digits)} %`;
}

/** Power in kW, whatever its size, so figures side by side compare at a glance. */
export function fmtPower(watts: number | null | undefined): string {
  if (watts === null || watts === undefined || Number.isNaN(watts)) return "—";
  return `${fmtNumber(watts / 1000, 2, 2)} kW`;
}

export function fmtEnergy(wh: number | null | undefined): string {
  if (wh === null || wh === undefined || Number.isNaN(wh)) return "—";
  return Math.abs(wh) >= 1000 ? `${fmtNumber(wh / 1000, 2, 2)} kWh` : `${fmtNumber(Math.round(wh), 0)} Wh`;
}

/** Minutes with one decimal under ten ("4.5 min"), whole above ("125 min") and at none. */
export function fmtMinutes(minutes: number | null | undefined): string {
  if (minutes === null || minutes === undefined || Number.isNaN(minutes)) return "—";
  const digits = minutes !== 0 && Math.abs(minutes) < 9.95 ? 1 : 0;
  return `${fmtNumber(minutes, digits, digits)} min`;
}

export function num(value: string | undefined | null): number | null {
  if (value === undefined || value === null || value === "" || value === "unknown" || value === "unavailable") {
    return null;
  }
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : null;
}

/** A CSS class for a connector or station status. */
export function statusClass(status: string | null | undefined): string {
  switch ((status ?? "").toLowerCase()) {
    case "available":
    case "online":
      return "ok";
    case "charging":
    case "preparing":
    case "finishing":
    case "suspendedev":
    case "suspendedevse":
    case "reserved":
      return "busy";
    case "faulted":
      return "bad";
    case "unavailable":
    case "offline":
      return "off";
    case "pending":
      return "warn";
    default:
      return "unknown";
  }
}

export function badge(status: string | null | undefined): TemplateResult {
  if (status === null || status === undefined || status === "") return html`<span class="muted">—</span>`;
  // The status in the interface's language where the catalogue has it; data-status stays raw.
  return html`<span class="badge ${statusClass(status)}" data-status=${status}>${tMaybe(`status.${status}`, status)}</span>`;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---- confirmation dialog and notices ----

/** Ask before an action; resolves true when confirmed. */
export async function confirmAction(title: string, message: string, confirmLabel = t("common.confirm")): Promise<boolean> {
  return (await confirmDialog(title, message, { confirmLabel, collect: () => true })) === true;
}

/** A confirmation dialog with extra fields: resolves what collect() reads from them when
 * confirmed, null when cancelled. */
export function confirmDialog<T>(
  title: string,
  message: string,
  options: { confirmLabel?: string; className?: string; fields?: HTMLElement[]; focus?: HTMLElement; collect: () => T },
): Promise<T | null> {
  return new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.className = ["confirm-dialog", options.className].filter(Boolean).join(" ");
    dialog.setAttribute("aria-labelledby", "confirm-title");
    const heading = document.createElement("h2");
    heading.id = "confirm-title";
    heading.textContent = title;
    const text = document.createElement("p");
    text.textContent = message;
    const buttons = document.createElement("div");
    buttons.className = "dialog-buttons";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = t("common.cancel");
    cancel.className = "secondary";
    const ok = document.createElement("button");
    ok.type = "button";
    ok.textContent = options.confirmLabel ?? t("common.confirm");
    ok.className = "primary";
    ok.dataset.confirm = "";
    buttons.append(cancel, ok);
    dialog.append(heading, text, ...(options.fields ?? []), buttons);
    document.body.append(dialog);
    let answered = false;
    const finish = (value: T | null) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    cancel.addEventListener("click", () => finish(null));
    ok.addEventListener("click", () => finish(options.collect()));
    dialog.addEventListener("close", () => finish(null));
    dialog.showModal();
    (options.focus ?? ok).focus();
  });
}

/** A labelled control for a confirmDialog's fields (use className "form-dialog"). */
export function dialogField(label: string, control: HTMLElement, hint?: string): HTMLLabelElement {
  const wrap = document.createElement("label");
  const text = document.createElement("span");
  text.textContent = label;
  wrap.append(text, control);
  if (hint) {
    const small = document.createElement("small");
    small.className = "muted";
    small.textContent = hint;
    wrap.append(small);
  }
  return wrap;
}

/** Show a short notice at the bottom of the page. */
export function notify(message: string, kind: "ok" | "error" = "ok"): void {
  let area = document.getElementById("notices");
  if (!area) {
    area = document.createElement("div");
    area.id = "notices";
    area.setAttribute("aria-live", "polite");
    document.body.append(area);
  }
  const notice = document.createElement("div");
  notice.className = `notice ${kind}`;
  notice.setAttribute("role", kind === "error" ? "alert" : "status");
  notice.textContent = message;
  area.append(notice);
  window.setTimeout(() => notice.remove(), kind === "error" ? 8000 : 4000);
}

export const none = nothing;
