// Sign-in, and first-run onboarding that creates the admin account.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import { api, ApiError } from "../api.js";
import { LightElement } from "../base.js";
import "../components/locale-switch.js";
import { LocaleController, t } from "../i18n.js";
import { session } from "../session.js";
import { errorMessage } from "../ui.js";

@customElement("ev-login")
export class LoginPage extends LightElement {
  @state() private onboarding: boolean | null = null;
  @state() private error: string | null = null;
  @state() private busy = false;

  constructor() {
    super();
    new LocaleController(this);
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.check();
  }

  private async check(): Promise<void> {
    try {
      const answer = await api.get<{ needed: boolean }>("/api/onboarding");
      this.onboarding = answer.needed;
    } catch (err) {
      if (err instanceof ApiError && err.notAvailable) {
        this.onboarding = false;
      } else {
        this.onboarding = false;
        this.error = errorMessage(err);
      }
    }
  }

  private async submit(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const data = new FormData(form);
    const username = String(data.get("username") ?? "").trim();
    const password = String(data.get("password") ?? "");
    if (this.onboarding && password !== String(data.get("confirm") ?? "")) {
      this.error = t("login.passwords_differ");
      return;
    }
    this.busy = true;
    this.error = null;
    try {
      if (this.onboarding) await session.onboard(username, password);
      else await session.login(username, password);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.error = t("login.wrong");
      else if (err instanceof ApiError && err.status === 429) {
        this.error = t("login.too_many", { reason: err.message });
      } else if (err instanceof ApiError && err.notAvailable) {
        this.error = t("login.not_available");
      } else this.error = errorMessage(err);
    } finally {
      this.busy = false;
    }
  }

  override render() {
    if (this.onboarding === null) return html`<p class="boot muted">${t("common.loading")}</p>`;
    const first = this.onboarding;
    return html`
      <div class="login-wrap">
        <div class="login-locale"><ev-locale-switch></ev-locale-switch></div>
        <form class="card login" @submit=${this.submit} aria-labelledby="login-title">
          <h1 id="login-title">${first ? t("login.welcome") : t("login.title")}</h1>
          ${first
            ? html`<p class="muted">${t("login.first_run")}</p>`
            : null}
          <label>${t("login.username")}
            <input name="username" autocomplete="username" required minlength="1" />
          </label>
          <label>${t("login.password")}
            <input name="password" type="password" autocomplete=${first ? "new-password" : "current-password"} required />
          </label>
          ${first
            ? html`<label>${t("login.repeat_password")}
                <input name="confirm" type="password" autocomplete="new-password" required />
              </label>`
            : null}
          ${this.error ? html`<p class="error-box" role="alert">${this.error}</p>` : null}
          <button class="primary" type="submit" ?disabled=${this.busy}>
            ${first ? t("login.create_account") : t("login.sign_in")}
          </button>
        </form>
      </div>
    `;
  }
}
