// Sign-in, and first-run onboarding that creates the admin account.

import { html } from "lit";
import { customElement, state } from "lit/decorators.js";
import { api, ApiError } from "../api.js";
import { LightElement } from "../base.js";
import { session } from "../session.js";
import { errorMessage } from "../ui.js";

@customElement("ev-login")
export class LoginPage extends LightElement {
  @state() private onboarding: boolean | null = null;
  @state() private error: string | null = null;
  @state() private busy = false;

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
      this.error = "The two passwords differ.";
      return;
    }
    this.busy = true;
    this.error = null;
    try {
      if (this.onboarding) await session.onboard(username, password);
      else await session.login(username, password);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.error = "Wrong username or password.";
      else if (err instanceof ApiError && err.status === 429) {
        this.error = `Too many attempts: ${err.message}`;
      } else if (err instanceof ApiError && err.notAvailable) {
        this.error = "Signing in is not available on this hub yet.";
      } else this.error = errorMessage(err);
    } finally {
      this.busy = false;
    }
  }

  override render() {
    if (this.onboarding === null) return html`<p class="boot muted">Loading…</p>`;
    const first = this.onboarding;
    return html`
      <div class="login-wrap">
        <form class="card login" @submit=${this.submit} aria-labelledby="login-title">
          <h1 id="login-title">${first ? "Welcome to evhub" : "Sign in to evhub"}</h1>
          ${first
            ? html`<p class="muted">No account exists yet. Create the administrator account.</p>`
            : null}
          <label>Username
            <input name="username" autocomplete="username" required minlength="1" />
          </label>
          <label>Password
            <input name="password" type="password" autocomplete=${first ? "new-password" : "current-password"} required />
          </label>
          ${first
            ? html`<label>Repeat password
                <input name="confirm" type="password" autocomplete="new-password" required />
              </label>`
            : null}
          ${this.error ? html`<p class="error-box" role="alert">${this.error}</p>` : null}
          <button class="primary" type="submit" ?disabled=${this.busy}>
            ${first ? "Create account" : "Sign in"}
          </button>
        </form>
      </div>
    `;
  }
}
