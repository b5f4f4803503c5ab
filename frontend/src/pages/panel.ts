// Integration panels: the pages integrations ship as JavaScript modules (GET /api/panels).
//
// An integration registers a panel with
//   ctx.register_panel(name, title, module_path, element, role=Role.VIEWER)
// The dashboard lists it in the navigation (for users whose role may see it), routes
// #/panel/<domain>/<name> to it, imports the module from its URL
// (/api/panels/<domain>/<name>.js) once, creates `document.createElement(element)`, sets the
// element's `hub` property and then mounts it. The module must define the custom element
// (customElements.define) within 5 s of the page opening, or the page shows an error.
// A panel registered with placement="station" is not a page: it is a section of the station
// page of every station its integration provides, mounted the same way, with one more
// property set before it is connected:
//
//   element.station = { device_id, charge_point_id, name }
//
// The dashboard's CSP is `script-src 'self'`: the module may import other modules from the
// hub, but not inline scripts, eval or scripts from other origins.
//
// The `hub` property, set once before the element is connected (integration authors code
// against this shape; keep it compatible):
//
//   element.hub = {
//     api: {
//       get(path)                    -> Promise<any>   GET path
//       post(path, body?)            -> Promise<any>   POST path with a JSON body ({} if none)
//       patch(path, body)            -> Promise<any>   PATCH path with a JSON body
//       delete(path)                 -> Promise<any>   DELETE path
//       callService(domain, service, data?, target?)
//                                    -> Promise<any>   call a hub service (WebSocket when
//                                                      connected, else REST); its result
//     },
//     user: { id, username, role: "admin" | "operator" | "viewer", created_at },
//   }
//
// The api methods take same-origin paths (e.g. "/api/panels", "/api/<domain>/..."), send the
// signed-in user's session cookie and CSRF token, and resolve the JSON answer (null for
// 204, text for a non-JSON answer). They reject with an Error whose `status` (HTTP status, 0
// when the hub cannot be reached), `code` (the answer's error code) and `message` say why.

import { html, type PropertyValues } from "lit";
import { customElement, property, state } from "lit/decorators.js";
import { api, type User } from "../api.js";
import { LightElement } from "../base.js";
import { t } from "../i18n.js";
import { session } from "../session.js";
import { errorMessage } from "../ui.js";

/** One entry of GET /api/panels. */
export interface PanelInfo {
  domain: string;
  name: string;
  title: string;
  icon: string;
  element: string;
  role: string;
  /** "page" (its own page in the navigation) or "station" (a station page section). */
  placement?: string;
  url: string;
}

/** What a station section's element gets as its `station` property. */
export interface PanelStation {
  device_id: string;
  charge_point_id: string | null;
  name: string;
}

/** What a panel's element gets as its `hub` property (see the top of this file). */
export interface PanelApi {
  get<T = unknown>(path: string): Promise<T>;
  post<T = unknown>(path: string, body?: unknown): Promise<T>;
  patch<T = unknown>(path: string, body: unknown): Promise<T>;
  delete<T = unknown>(path: string): Promise<T>;
  callService(
    domain: string,
    service: string,
    data?: Record<string, unknown>,
    target?: Record<string, unknown>,
  ): Promise<unknown>;
}

export interface PanelHub {
  api: PanelApi;
  user: User;
}

/** How long a panel's module has to load and define its element. */
export const PANEL_TIMEOUT_MS = 5000;

const panelApi: PanelApi = Object.freeze({
  get: <T = unknown>(path: string) => api.get<T>(path),
  post: <T = unknown>(path: string, body?: unknown) => api.post<T>(path, body),
  patch: <T = unknown>(path: string, body: unknown) => api.patch<T>(path, body),
  delete: <T = unknown>(path: string) => api.delete<T>(path),
  callService: (
    domain: string,
    service: string,
    data: Record<string, unknown> = {},
    target?: Record<string, unknown>,
  ) => session.callService(domain, service, data, target),
});

/** The panels the signed-in user may see; an empty list when the hub offers none. */
export async function fetchPanels(): Promise<PanelInfo[]> {
  const answer = await api.get<PanelInfo[]>("/api/panels");
  return Array.isArray(answer) ? answer : [];
}

/** The hash path of a panel's page. */
export function panelPath(panel: Pick<PanelInfo, "domain" | "name">): string {
  return `/panel/${encodeURIComponent(panel.domain)}/${encodeURIComponent(panel.name)}`;
}

// Each module is imported once; a failed import may be tried again (opening the page again).
const modules = new Map<string, Promise<unknown>>();

function importModule(url: string): Promise<unknown> {
  let loading = modules.get(url);
  if (!loading) {
    loading = import(/* @vite-ignore */ url);
    modules.set(url, loading);
    loading.catch(() => modules.delete(url));
  }
  return loading;
}

function timeout(ms: number, message: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(message)), ms));
}

/** Import a panel's module and wait for its element to be defined (within the time limit). */
async function loadPanel(panel: PanelInfo): Promise<void> {
  const deadline = Date.now() + PANEL_TIMEOUT_MS;
  const seconds = PANEL_TIMEOUT_MS / 1000;
  try {
    await Promise.race([
      importModule(panel.url),
      timeout(PANEL_TIMEOUT_MS, t("panel.timeout", { seconds })),
    ]);
  } catch (err) {
    throw new Error(t("panel.load_failed", { title: panel.title, reason: errorMessage(err) }));
  }
  if (customElements.get(panel.element)) return;
  try {
    await Promise.race([
      customElements.whenDefined(panel.element),
      timeout(Math.max(0, deadline - Date.now()), "timed out"),
    ]);
  } catch {
    throw new Error(
      `The panel “${panel.title}” did not define its element <${panel.element}> within ${seconds} s.`,
    );
  }
}

/** Load a panel's module and create its element, `hub` (and `station`) set. */
async function createPanelElement(panel: PanelInfo, station?: PanelStation): Promise<HTMLElement | null> {
  await loadPanel(panel);
  const user = session.user;
  if (!user) return null;
  const element = document.createElement(panel.element) as HTMLElement & {
    hub?: PanelHub;
    station?: PanelStation;
  };
  element.hub = Object.freeze({ api: panelApi, user: { ...user } });
  if (station) element.station = Object.freeze({ ...station });
  element.classList.add("integration-panel");
  element.dataset.panel = `${panel.domain}/${panel.name}`;
  return element;
}

/** Whether a panel is a page of its own (not a station page section). */
export function isPagePanel(panel: PanelInfo): boolean {
  return (panel.placement ?? "page") === "page";
}

/** The page of one integration panel: loads its module and mounts its element. */
@customElement("ev-panel")
export class PanelPage extends LightElement {
  /** The panel to show; undefined while the list loads or when there is no such panel. */
  @property({ attribute: false }) panel: PanelInfo | undefined;
  /** Whether the panel list has loaded (so a missing panel is "not found", not "loading"). */
  @property({ attribute: false }) listed = false;
  @property({ attribute: false }) domain = "";
  @property({ attribute: false }) name = "";

  @state() private mounted: HTMLElement | null = null;
  @state() private error: string | null = null;
  private loadedKey: string | null = null;
  private generation = 0;

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (!changed.has("panel")) return;
    const panel = this.panel;
    const key = panel ? `${panel.domain}/${panel.name}/${panel.element}/${panel.url}` : null;
    if (key === this.loadedKey) return;
    this.loadedKey = key;
    this.mounted = null;
    this.error = null;
    const generation = ++this.generation;
    if (panel) void this.mount(panel, generation);
  }

  private async mount(panel: PanelInfo, generation: number): Promise<void> {
    try {
      const element = await createPanelElement(panel);
      if (generation !== this.generation || !element) return;
      this.mounted = element;
    } catch (err) {
      if (generation !== this.generation) return;
      this.error = errorMessage(err);
    }
  }

  override render() {
    const panel = this.panel;
    if (!panel) {
      if (!this.listed) return html`<p class="muted loading" role="status">${t("common.loading")}</p>`;
      return html`<h1>${t("panel.not_found")}</h1>
        <p>${t("panel.not_found_text", { panel: `${this.domain}/${this.name}` })}</p>
        <p><a href="#/">${t("app.back_to_overview")}</a></p>`;
    }
    if (this.error) {
      return html`<h1>${panel.title}</h1>
        <p class="error-box panel-error" role="alert">${this.error}</p>`;
    }
    if (!this.mounted) {
      return html`<p class="muted loading" role="status">${t("panel.loading", { title: panel.title })}</p>`;
    }
    return this.mounted;
  }
}

/** The sections integrations add to a station's page: their station panels, in order. */
@customElement("ev-station-sections")
export class StationSections extends LightElement {
  /** The station panels of this station's integration. */
  @property({ attribute: false }) panels: PanelInfo[] = [];
  @property({ attribute: false }) station: PanelStation | undefined;

  @state() private mounted: { panel: PanelInfo; element: HTMLElement | null; error: string | null }[] = [];
  private loadedKey: string | null = null;
  private generation = 0;

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (!changed.has("panels") && !changed.has("station")) return;
    const station = this.station;
    const key = station
      ? `${station.device_id}|${this.panels.map((p) => `${p.domain}/${p.name}/${p.url}`).join(",")}`
      : null;
    if (key === this.loadedKey) return;
    this.loadedKey = key;
    const generation = ++this.generation;
    this.mounted = [];
    if (station) void this.mountAll(station, generation);
  }

  private async mountAll(station: PanelStation, generation: number): Promise<void> {
    const mounted = await Promise.all(
      this.panels.map(async (panel) => {
        try {
          return { panel, element: await createPanelElement(panel, station), error: null };
        } catch (err) {
          return { panel, element: null, error: errorMessage(err) };
        }
      }),
    );
    if (generation === this.generation) this.mounted = mounted;
  }

  override render() {
    return this.mounted.map(
      ({ panel, element, error }) => html`<section class="card station-section" data-section=${`${panel.domain}/${panel.name}`}>
        <h2>${panel.title}</h2>
        ${error ? html`<p class="error-box panel-error" role="alert">${error}</p>` : element}
      </section>`,
    );
  }
}
