// Users and access tokens: an admin lists, adds, re-roles, resets and deletes users and sees
// every token; everyone changes their own password and keeps their own tokens ("My account").

import { html, nothing } from "lit";
import { customElement, property, state } from "lit/decorators.js";
import { api, ApiError, type AccessToken, type CreatedToken, type User } from "../api.js";
import { LightElement } from "../base.js";
import { LocaleController, t } from "../i18n.js";
import { session } from "../session.js";
import {
  confirmAction,
  confirmDialog,
  dialogField,
  errorMessage,
  fmtTime,
  Loader,
  notify,
  renderLoad,
} from "../ui.js";

const ROLES: User["role"][] = ["viewer", "operator", "admin"];
const MIN_PASSWORD = 8;

function roleName(role: string): string {
  return role === "admin" || role === "operator" || role === "viewer" ? t(`role.${role}`) : role;
}

function passwordInput(): HTMLInputElement {
  const input = document.createElement("input");
  input.type = "password";
  input.autocomplete = "new-password";
  input.minLength = MIN_PASSWORD;
  input.required = true;
  return input;
}

// ---- access tokens (own, or every user's for an admin) ----

@customElement("ev-tokens")
export class TokensSection extends LightElement {
  /** Every user's tokens (an admin's view on the users page), else the user's own. */
  @property({ type: Boolean }) all = false;
  @state() private created: CreatedToken | null = null;
  @state() private busy = false;
  @state() private formError: string | null = null;
  private tokens = new Loader(this, () => api.get<AccessToken[]>(`/api/tokens${this.all ? "?all=true" : ""}`));

  constructor() {
    super();
    new LocaleController(this);
  }

  protected override updated(changed: Map<PropertyKey, unknown>): void {
    if (changed.has("all") && changed.get("all") !== undefined) void this.tokens.reload();
  }

  private async create(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const name = (form.elements.namedItem("token-name") as HTMLInputElement).value.trim();
    const daysText = (form.elements.namedItem("token-days") as HTMLInputElement).value.trim();
    if (!name) {
      this.formError = t("tokens.name_required");
      return;
    }
    const days = daysText === "" ? null : Number(daysText);
    if (days !== null && !(Number.isFinite(days) && days > 0)) {
      this.formError = t("tokens.bad_lifespan");
      return;
    }
    this.formError = null;
    this.busy = true;
    try {
      const body: Record<string, unknown> = { name };
      if (days !== null) body.lifespan_days = days;
      this.created = await api.post<CreatedToken>("/api/tokens", body);
      form.reset();
      notify(t("tokens.created", { name }));
      await this.tokens.reload();
    } catch (err) {
      this.formError = errorMessage(err);
    } finally {
      this.busy = false;
    }
  }

  private async revoke(token: AccessToken): Promise<void> {
    const ok = await confirmAction(
      t("tokens.revoke_title"),
      t("tokens.revoke_message", { name: token.name, user: token.username ?? token.user_id }),
      t("tokens.revoke"),
    );
    if (!ok) return;
    try {
      await api.delete(`/api/tokens/${encodeURIComponent(token.id)}`);
      notify(t("tokens.revoked", { name: token.name }));
    } catch (err) {
      notify(t("admin.failed", { what: t("tokens.revoke"), reason: errorMessage(err) }), "error");
    }
    await this.tokens.reload();
  }

  private async copy(value: string, input: HTMLInputElement | null): Promise<void> {
    try {
      await navigator.clipboard.writeText(value);
      notify(t("tokens.copied"));
    } catch {
      // No clipboard (a page over plain HTTP): select it for the user to copy.
      input?.select();
    }
  }

  private renderCreated() {
    const created = this.created;
    if (!created) return nothing;
    return html`<div class="token-once" role="status" data-token-once>
      <strong>${t("tokens.shown_once")}</strong>
      <label>
        <span>${created.name}</span>
        <input type="text" readonly .value=${created.token} aria-label=${t("tokens.value")} @focus=${(e: FocusEvent) => (e.target as HTMLInputElement).select()} />
      </label>
      <div class="button-row">
        <button class="small" @click=${(e: Event) => this.copy(created.token, (e.target as HTMLElement).closest(".token-once")?.querySelector("input") ?? null)}>${t("tokens.copy")}</button>
        <button class="small secondary" @click=${() => (this.created = null)}>${t("tokens.done")}</button>
      </div>
    </div>`;
  }

  private renderList(tokens: AccessToken[]) {
    if (tokens.length === 0) return html`<p class="muted">${t("tokens.none")}</p>`;
    const me = session.user?.id;
    return html`<table class="data responsive tokens-table">
      <thead>
        <tr>
          <th>${t("tokens.col_name")}</th>
          ${this.all ? html`<th>${t("tokens.col_user")}</th>` : nothing}
          <th>${t("tokens.col_created")}</th><th>${t("tokens.col_last_used")}</th><th>${t("tokens.col_expires")}</th><th></th>
        </tr>
      </thead>
      <tbody>
        ${tokens.map(
          (token) => html`<tr data-token-id=${token.id} data-token-name=${token.name}>
            <td data-label=${t("tokens.col_name")}><strong>${token.name}</strong></td>
            ${this.all
              ? html`<td data-label=${t("tokens.col_user")}>${token.username ?? token.user_id}${token.user_id === me ? html` <small class="muted">(${t("users.you")})</small>` : nothing}</td>`
              : nothing}
            <td data-label=${t("tokens.col_created")}>${fmtTime(token.created_at)}</td>
            <td data-label=${t("tokens.col_last_used")}>${token.last_used_at ? fmtTime(token.last_used_at) : t("tokens.never")}</td>
            <td data-label=${t("tokens.col_expires")}>${token.expires_at ? fmtTime(token.expires_at) : t("tokens.never")}</td>
            <td data-label="">
              <button class="danger small" data-action="revoke" @click=${() => this.revoke(token)}>${t("tokens.revoke")}</button>
            </td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  override render() {
    return html`<section class="card" data-section=${this.all ? "all-tokens" : "my-tokens"}>
      <h2>${this.all ? t("tokens.all_title") : t("tokens.title")}</h2>
      <p class="muted small">${t("tokens.explain")}</p>
      ${this.renderCreated()}
      ${renderLoad(this.tokens, (tokens) => this.renderList(tokens), t("tokens.title"))}
      <form class="new-token" @submit=${(e: SubmitEvent) => this.create(e)}>
        <h3>${t("tokens.new_title")}</h3>
        <div class="form-grid">
          <label><span>${t("tokens.name")}</span><input name="token-name" maxlength="100" required /></label>
          <label>
            <span>${t("tokens.lifespan")}</span>
            <input name="token-days" type="number" min="1" max="3650" step="1" inputmode="numeric" />
            <small class="muted">${t("tokens.lifespan_hint")}</small>
          </label>
        </div>
        ${this.formError ? html`<p class="error-box" role="alert">${this.formError}</p>` : nothing}
        <button class="primary" type="submit" ?disabled=${this.busy}>${t("tokens.create")}</button>
      </form>
    </section>`;
  }
}

// ---- my account: one's own password and tokens ----

@customElement("ev-account")
export class AccountPage extends LightElement {
  @state() private busy = false;
  @state() private error: string | null = null;

  constructor() {
    super();
    new LocaleController(this);
  }

  private async changePassword(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement).value;
    const current = value("current-password");
    const next = value("new-password");
    if (next.length < MIN_PASSWORD) {
      this.error = t("users.password_short");
      return;
    }
    if (next !== value("repeat-password")) {
      this.error = t("account.passwords_differ");
      return;
    }
    this.error = null;
    this.busy = true;
    try {
      await api.post("/api/auth/password", { current_password: current, new_password: next });
      form.reset();
      // The new password ended every session: carry on with the new one the hub gave.
      await session.restore();
      notify(t("account.password_changed"));
    } catch (err) {
      this.error =
        err instanceof ApiError && err.code === "invalid_credentials" ? t("account.wrong_password") : errorMessage(err);
    } finally {
      this.busy = false;
    }
  }

  override render() {
    const user = session.user;
    if (!user) return nothing;
    return html`
      <h1>${t("account.title")}</h1>
      <p data-whoami>${t("account.signed_in_as", { name: user.username, role: roleName(user.role) })}</p>
      ${session.isAdmin ? html`<p><a href="#/users">${t("account.manage_users")}</a></p>` : nothing}
      <section class="card">
        <h2>${t("account.change_password")}</h2>
        <p class="muted small">${t("account.password_hint")}</p>
        <form class="change-password" @submit=${(e: SubmitEvent) => this.changePassword(e)}>
          <div class="form-grid">
            <label><span>${t("account.current_password")}</span><input name="current-password" type="password" autocomplete="current-password" required /></label>
            <label><span>${t("account.new_password")}</span><input name="new-password" type="password" autocomplete="new-password" minlength="8" required /></label>
            <label><span>${t("account.repeat_password")}</span><input name="repeat-password" type="password" autocomplete="new-password" minlength="8" required /></label>
          </div>
          ${this.error ? html`<p class="error-box" role="alert">${this.error}</p>` : nothing}
          <button class="primary" type="submit" ?disabled=${this.busy}>${t("account.change_password")}</button>
        </form>
      </section>
      <ev-tokens></ev-tokens>
    `;
  }
}

// ---- users (admins) ----

@customElement("ev-users")
export class UsersPage extends LightElement {
  @state() private busy: string | null = null;
  @state() private addError: string | null = null;
  private users = new Loader(this, () =>
    session.isAdmin ? api.get<User[]>("/api/users") : Promise.resolve([] as User[]),
  );

  constructor() {
    super();
    new LocaleController(this);
  }

  private lastAdmin(user: User, users: User[]): boolean {
    return user.role === "admin" && users.filter((u) => u.role === "admin").length === 1;
  }

  private async run(user: User, work: () => Promise<void>): Promise<void> {
    this.busy = user.id;
    try {
      await work();
    } finally {
      this.busy = null;
      await this.users.reload();
    }
  }

  private async add(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement).value;
    const username = value("new-username").trim();
    const password = value("new-password");
    const role = value("new-role");
    if (password.length < MIN_PASSWORD) {
      this.addError = t("users.password_short");
      return;
    }
    this.addError = null;
    this.busy = "add";
    try {
      await api.post<User>("/api/users", { username, password, role });
      form.reset();
      notify(t("users.added", { name: username, role: roleName(role) }));
      await this.users.reload();
    } catch (err) {
      this.addError = errorMessage(err);
    } finally {
      this.busy = null;
    }
  }

  private async changeRole(user: User, select: HTMLSelectElement): Promise<void> {
    const role = select.value as User["role"];
    const ok = await confirmAction(
      t("users.role_title"),
      t("users.role_message", { name: user.username, role: roleName(role) }),
      t("users.role_title"),
    );
    if (!ok) {
      select.value = user.role;
      return;
    }
    await this.run(user, async () => {
      try {
        await api.patch(`/api/users/${encodeURIComponent(user.id)}`, { role });
        notify(t("users.role_changed", { name: user.username, role: roleName(role) }));
        if (user.id === session.user?.id) await session.restore();
      } catch (err) {
        select.value = user.role;
        notify(t("admin.failed", { what: t("users.role_title"), reason: errorMessage(err) }), "error");
      }
    });
  }

  private async resetPassword(user: User): Promise<void> {
    const input = passwordInput();
    const password = await confirmDialog(t("users.reset_password"), t("users.reset_message", { name: user.username }), {
      confirmLabel: t("users.reset_password"),
      className: "form-dialog",
      fields: [dialogField(t("users.new_password"), input, t("users.password_short"))],
      focus: input,
      collect: () => input.value,
    });
    if (password === null) return;
    if (password.length < MIN_PASSWORD) {
      notify(t("users.password_short"), "error");
      return;
    }
    await this.run(user, async () => {
      try {
        await api.patch(`/api/users/${encodeURIComponent(user.id)}`, { password });
        notify(t("users.password_reset", { name: user.username }));
      } catch (err) {
        notify(t("admin.failed", { what: t("users.reset_password"), reason: errorMessage(err) }), "error");
      }
    });
  }

  private async deleteUser(user: User): Promise<void> {
    const self = user.id === session.user?.id;
    const ok = await confirmAction(
      t("users.delete_title"),
      self ? t("users.delete_self") : t("users.delete_message", { name: user.username }),
      t("common.delete"),
    );
    if (!ok) return;
    await this.run(user, async () => {
      try {
        await api.delete(`/api/users/${encodeURIComponent(user.id)}`);
        notify(t("users.deleted", { name: user.username }));
        if (self) await session.logout();
      } catch (err) {
        notify(t("admin.failed", { what: t("users.delete_title"), reason: errorMessage(err) }), "error");
      }
    });
  }

  private renderUsers(users: User[]) {
    const me = session.user?.id;
    return html`<table class="data responsive users-table">
      <thead><tr><th>${t("users.col_user")}</th><th>${t("users.col_role")}</th><th>${t("users.col_created")}</th><th></th></tr></thead>
      <tbody>
        ${users.map((user) => {
          const last = this.lastAdmin(user, users);
          const busy = this.busy === user.id;
          return html`<tr data-username=${user.username} data-role=${user.role}>
            <td data-label=${t("users.col_user")}>
              <strong>${user.username}</strong>${user.id === me ? html` <small class="muted">(${t("users.you")})</small>` : nothing}
            </td>
            <td data-label=${t("users.col_role")}>
              <select
                aria-label=${t("users.role_of", { name: user.username })}
                ?disabled=${busy || last}
                title=${last ? t("users.last_admin") : ""}
                @change=${(e: Event) => this.changeRole(user, e.target as HTMLSelectElement)}
              >
                ${ROLES.map((role) => html`<option value=${role} ?selected=${role === user.role}>${roleName(role)}</option>`)}
              </select>
            </td>
            <td data-label=${t("users.col_created")}>${fmtTime(user.created_at)}</td>
            <td data-label="">
              <div class="button-row">
                <button class="small" data-action="reset-password" ?disabled=${busy} @click=${() => this.resetPassword(user)}>${t("users.reset_password")}</button>
                <button
                  class="danger small"
                  data-action="delete"
                  ?disabled=${busy || last}
                  title=${last ? t("users.last_admin") : ""}
                  @click=${() => this.deleteUser(user)}
                >${t("common.delete")}</button>
              </div>
            </td>
          </tr>`;
        })}
      </tbody>
    </table>
    ${users.some((u) => this.lastAdmin(u, users)) ? html`<p class="muted small">${t("users.last_admin")}</p>` : nothing}`;
  }

  override render() {
    if (!session.isAdmin) {
      return html`<h1>${t("users.title")}</h1>
        <p class="muted">${t("users.admin_only")}</p>
        <p><a href="#/account">${t("account.title")}</a></p>`;
    }
    return html`
      <h1>${t("users.title")}</h1>
      <p class="muted small">${t("users.explain")} <a href="#/account">${t("account.title")}</a></p>
      <section class="card">
        ${renderLoad(this.users, (users) => this.renderUsers(users), t("users.what"))}
        <form class="add-user" @submit=${(e: SubmitEvent) => this.add(e)}>
          <h3>${t("users.add_title")}</h3>
          <div class="form-grid">
            <label><span>${t("users.username")}</span><input name="new-username" autocomplete="off" maxlength="64" pattern="[A-Za-z0-9_.@\\-]{1,64}" required /></label>
            <label><span>${t("users.password")}</span><input name="new-password" type="password" autocomplete="new-password" minlength="8" required /></label>
            <label>
              <span>${t("users.role")}</span>
              <select name="new-role">
                ${ROLES.map((role) => html`<option value=${role}>${roleName(role)}</option>`)}
              </select>
            </label>
          </div>
          ${this.addError ? html`<p class="error-box" role="alert">${this.addError}</p>` : nothing}
          <button class="primary" type="submit" ?disabled=${this.busy === "add"}>${t("users.add")}</button>
        </form>
      </section>
      <ev-tokens .all=${true}></ev-tokens>
    `;
  }
}
