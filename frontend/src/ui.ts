// Shared page helpers: data loaders with "not available" states, live updates, formatting,
// a confirmation dialog and short notices.

import { html, nothing, type ReactiveController, type ReactiveControllerHost, type TemplateResult } from "lit";
import { ApiError } from "./api.js";
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
  what = "This data",
): unknown {
  const state = loader.state;
  switch (state.kind) {
    case "loading":
      return html`<p class="muted loading" role="status">Loading…</p>`;
    case "not_available":
      return notAvailable(what);
    case "error":
      return html`<p class="error-box" role="alert">${state.message}</p>`;
    case "ready":
      return render(state.value);
  }
}

export function notAvailable(what: string): TemplateResult {
  return html`<div class="not-available" data-state="not-available">
    <strong>Not available</strong>
    <span>${what}: not offered by this hub yet.</span>
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
  return date.toLocaleString(undefined, {
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
  const options: Intl.DateTimeFormatOptions = { month: "short", day: "numeric" };
  try {
    return date.toLocaleDateString(undefined, { ...options, timeZone });
  } catch {
    return date.toLocaleDateString(undefined, options); // a zone this browser does not know
  }
}

export function fmtAgo(value: string | number | null | undefined): string {
  const date = toDate(value);
  if (!date) return "—";
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function fmtPct(value: number | null | undefined, digits = 2): string {
  return value === null || value === undefined || Number.isNaN(value) ? "—" : `${value.toFixed(digits)} %`;
}

export function fmtPower(watts: number | null | undefined): string {
  if (watts === null || watts === undefined || Number.isNaN(watts)) return "—";
  return Math.abs(watts) >= 1000 ? `${(watts / 1000).toFixed(2)} kW` : `${Math.round(watts)} W`;
}

export function fmtEnergy(wh: number | null | undefined): string {
  if (wh === null || wh === undefined || Number.isNaN(wh)) return "—";
  return Math.abs(wh) >= 1000 ? `${(wh / 1000).toFixed(2)} kWh` : `${Math.round(wh)} Wh`;
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
  return html`<span class="badge ${statusClass(status)}" data-status=${status ?? "unknown"}>${status ?? "unknown"}</span>`;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---- confirmation dialog and notices ----

/** Ask before an action; resolves true when confirmed. */
export async function confirmAction(title: string, message: string, confirmLabel = "Confirm"): Promise<boolean> {
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
    cancel.textContent = "Cancel";
    cancel.className = "secondary";
    const ok = document.createElement("button");
    ok.type = "button";
    ok.textContent = options.confirmLabel ?? "Confirm";
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
