// The application shell: sign-in gate, collapsible navigation, connection status, routing.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import { keyed } from "lit/directives/keyed.js";
import { locale, onLocaleChange, t, type MessageKey } from "./i18n.js";
import "./components/locale-switch.js";
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
import "./pages/users.js";
import "./pages/notifications.js";
import { fetchPanels, isPagePanel, panelPath, type PanelInfo } from "./pages/panel.js";

const NAV: [string, string, MessageKey, boolean?][] = [
  ["overview", "/", "nav.overview"],
  ["chargers", "/chargers", "nav.chargers"],
  ["alerts", "/alerts", "nav.alerts"],
  ["reports", "/reports", "nav.reports"],
  ["success", "/success", "nav.success"],
  ["automations", "/automations", "nav.automations"],
  ["pending", "/pending", "nav.pending"],
  ["notifications", "/notifications", "nav.notifications"],
  ["security", "/security", "nav.security"],
  ["audit", "/audit", "nav.audit", true],
  ["users", "/users", "nav.users", true],
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
  private offLocale: (() => void) | null = null;

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
    this.offLocale = onLocaleChange(() => this.requestUpdate());
    void this.boot();
  }

  override disconnectedCallback(): void {
    window.removeEventListener("hashchange", this.onHash);
    session.removeEventListener("change", this.onSession);
    this.offLocale?.();
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
      case "users":
        return html`<ev-users></ev-users>`;
      case "account":
        return html`<ev-account></ev-account>`;
      case "notifications":
        return html`<ev-notifications></ev-notifications>`;
      case "panel":
        return html`<ev-panel
          .domain=${params.domain}
          .name=${params.name}
          .listed=${this.panelsListed}
          .panel=${this.panels.find((p) => p.domain === params.domain && p.name === params.name)}
        ></ev-panel>`;
      default:
        return html`<h1>${t("app.not_found")}</h1><p><a href="#/">${t("app.back_to_overview")}</a></p>`;
    }
  }

  override render() {
    if (this.booting) return html`<p class="boot muted">${t("app.loading")}</p>`;
    if (this.bootError) {
      return html`<div class="boot"><p class="error-box" role="alert">${this.bootError}</p>
        <button @click=${() => { this.booting = true; void this.boot(); }}>${t("app.try_again")}</button></div>`;
    }
    const user = session.user;
    if (!user) return html`<ev-login></ev-login>`;
    const { name: routeName, params } = this.route;
    const current =
      routeName === "panel" ? `panel:${params.domain}/${params.name}` : (SECTION[routeName] ?? routeName);
    const panelNav = this.panels.map((p): [string, string, string] => [`panel:${p.domain}/${p.name}`, panelPath(p), p.title]);
    const nav = NAV.filter(([, , , adminOnly]) => !adminOnly || session.isAdmin).map(
      ([name, path, key]): [string, string, string] => [name, path, t(key)],
    );
    const status = session.connectionStatus;
    return html`
      <div class="shell ${this.navOpen ? "nav-open" : ""}">
        <header class="topbar">
          <button
            class="nav-toggle"
            aria-label=${t("app.menu")}
            aria-expanded=${this.navOpen ? "true" : "false"}
            aria-controls="main-nav"
            @click=${() => (this.navOpen = !this.navOpen)}
          >
            <span></span><span></span><span></span>
          </button>
          <a class="brand" href="#/">evhub</a>
          <span class="conn ${status}" title=${t("app.connection_title", { status: t(`conn.${status}`) })} data-connection=${status}>
            <span class="dot"></span><span class="conn-text">${t(`conn.${status}`)}</span>
          </span>
          <a class="whoami" href="#/account" title=${t("account.title")} data-role=${user.role}>${user.username} <small>(${t(`role.${user.role}`)})</small></a>
          <ev-locale-switch></ev-locale-switch>
          <button class="secondary small" @click=${() => void session.logout()}>${t("app.log_out")}</button>
        </header>
        <nav id="main-nav" class="sidenav" aria-label=${t("app.main_nav")}>
          <ul>
            ${[...nav, ...panelNav].map(
              ([name, path, label]) => html`<li>
                <a href="#${path}" class=${current === name ? "active" : ""} aria-current=${current === name ? "page" : "false"}>${label}</a>
              </li>`,
            )}
          </ul>
        </nav>
        <div class="scrim" @click=${() => (this.navOpen = false)}></div>
        <main class="content">${keyed(locale(), this.renderPage())}</main>
      </div>
    `;
  }
}
