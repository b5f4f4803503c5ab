// The application shell: sign-in gate, collapsible navigation, connection status, routing.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import { LightElement } from "./base.js";
import { parseRoute, type Route } from "./router.js";
import { session } from "./session.js";
import { errorMessage } from "./ui.js";
import "./pages/login.js";
import "./pages/overview.js";
import "./pages/chargers.js";
import "./pages/station.js";
import "./pages/alerts.js";
import "./pages/security.js";
import "./pages/audit.js";
import "./pages/automations.js";
import "./pages/reports.js";
import "./pages/success.js";
import "./pages/pending.js";
import { fetchPanels, isPagePanel, panelPath, type PanelInfo } from "./pages/panel.js";

const NAV: [string, string, string, boolean?][] = [
  ["overview", "/", "Overview"],
  ["chargers", "/chargers", "Chargers"],
  ["alerts", "/alerts", "Alerts"],
  ["reports", "/reports", "Reports"],
  ["success", "/success", "Charge success"],
  ["automations", "/automations", "Automations"],
  ["pending", "/pending", "Pending chargers"],
  ["security", "/security", "Security events"],
  ["audit", "/audit", "Audit log", true],
];

const SECTION: Record<string, string> = { station: "chargers", automation: "automations" };

@customElement("evhub-app")
export class EvhubApp extends LightElement {
  @state() private booting = true;
  @state() private bootError: string | null = null;
  @state() private route: Route = parseRoute(location.hash);
  @state() private navOpen = false;
  /** The integration panels the signed-in user may see (GET /api/panels). */
  @state() private panels: PanelInfo[] = [];
  /** The station page sections integrations ship (panels with placement "station"). */
  @state() private stationPanels: PanelInfo[] = [];
  @state() private panelsListed = false;
  private panelsUser: string | null = null;

  private readonly onHash = () => {
    this.route = parseRoute(location.hash);
    this.navOpen = false;
    window.scrollTo(0, 0);
  };
  private readonly onSession = () => {
    this.syncPanels();
    this.requestUpdate();
  };

  /** Fetch the panel list once per signed-in user; forget it on sign-out. */
  private syncPanels(): void {
    const userId = session.user?.id ?? null;
    if (userId === this.panelsUser) return;
    this.panelsUser = userId;
    this.panels = [];
    this.stationPanels = [];
    this.panelsListed = false;
    if (userId === null) return;
    fetchPanels().then(
      (panels) => {
        if (this.panelsUser !== userId) return;
        this.panels = panels.filter(isPagePanel);
        this.stationPanels = panels.filter((panel) => !isPagePanel(panel));
        this.panelsListed = true;
      },
      (err) => {
        if (this.panelsUser !== userId) return;
        console.warn("evhub: the integration panels could not be listed:", err);
        this.panelsListed = true;
      },
    );
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener("hashchange", this.onHash);
    session.addEventListener("change", this.onSession);
    void this.boot();
  }

  override disconnectedCallback(): void {
    window.removeEventListener("hashchange", this.onHash);
    session.removeEventListener("change", this.onSession);
    super.disconnectedCallback();
  }

  private async boot(): Promise<void> {
    try {
      await session.restore();
      this.bootError = null;
      this.syncPanels();
    } catch (err) {
      this.bootError = errorMessage(err);
    }
    this.booting = false;
  }

  private renderPage() {
    const { name, params } = this.route;
    switch (name) {
      case "overview":
        return html`<ev-overview></ev-overview>`;
      case "chargers":
        return html`<ev-chargers></ev-chargers>`;
      case "station":
        return html`<ev-station .deviceId=${params.id} .sections=${this.stationPanels}></ev-station>`;
      case "alerts":
        return html`<ev-alerts></ev-alerts>`;
      case "security":
        return html`<ev-security></ev-security>`;
      case "audit":
        return html`<ev-audit></ev-audit>`;
      case "automations":
        return html`<ev-automations></ev-automations>`;
      case "automation":
        return html`<ev-automations .selected=${params.id}></ev-automations>`;
      case "reports":
        return html`<ev-reports></ev-reports>`;
      case "success":
        return html`<ev-success></ev-success>`;
      case "pending":
        return html`<ev-pending></ev-pending>`;
      case "panel":
        return html`<ev-panel
          .domain=${params.domain}
          .name=${params.name}
          .listed=${this.panelsListed}
          .panel=${this.panels.find((p) => p.domain === params.domain && p.name === params.name)}
        ></ev-panel>`;
      default:
        return html`<h1>Page not found</h1><p><a href="#/">Back to the overview</a></p>`;
    }
  }

  override render() {
    if (this.booting) return html`<p class="boot muted">Loading evhub…</p>`;
    if (this.bootError) {
      return html`<div class="boot"><p class="error-box" role="alert">${this.bootError}</p>
        <button @click=${() => { this.booting = true; void this.boot(); }}>Try again</button></div>`;
    }
    const user = session.user;
    if (!user) return html`<ev-login></ev-login>`;
    const { name: routeName, params } = this.route;
    const current =
      routeName === "panel" ? `panel:${params.domain}/${params.name}` : (SECTION[routeName] ?? routeName);
    const panelNav = this.panels.map((p): [string, string, string] => [`panel:${p.domain}/${p.name}`, panelPath(p), p.title]);
    const status = session.connectionStatus;
    return html`
      <div class="shell ${this.navOpen ? "nav-open" : ""}">
        <header class="topbar">
          <button
            class="nav-toggle"
            aria-label="Menu"
            aria-expanded=${this.navOpen ? "true" : "false"}
            aria-controls="main-nav"
            @click=${() => (this.navOpen = !this.navOpen)}
          >
            <span></span><span></span><span></span>
          </button>
          <a class="brand" href="#/">evhub</a>
          <span class="conn ${status}" title="Live connection: ${status}" data-connection=${status}>
            <span class="dot"></span><span class="conn-text">${status === "connected" ? "live" : status}</span>
          </span>
          <span class="whoami" data-role=${user.role}>${user.username} <small>(${user.role})</small></span>
          <button class="secondary small" @click=${() => void session.logout()}>Log out</button>
        </header>
        <nav id="main-nav" class="sidenav" aria-label="Main">
          <ul>
            ${[...NAV.filter(([, , , adminOnly]) => !adminOnly || session.isAdmin), ...panelNav].map(
              ([name, path, label]) => html`<li>
                <a href="#${path}" class=${current === name ? "active" : ""} aria-current=${current === name ? "page" : "false"}>${label}</a>
              </li>`,
            )}
          </ul>
        </nav>
        <div class="scrim" @click=${() => (this.navOpen = false)}></div>
        <main class="content">${this.renderPage()}</main>
      </div>
    `;
  }
}
