// The signed-in user, the live connection and the entity store, shared by every page.

import { api, ApiError, onUnauthorized, setCsrfToken, type User } from "./api.js";
import { HubConnection, type ConnectionStatus } from "./connection.js";
import { EntityStore } from "./entities.js";

interface AuthAnswer {
  user: User;
  csrf_token: string;
}

class Session extends EventTarget {
  user: User | null = null;
  connection: HubConnection | null = null;
  readonly entities = new EntityStore();
  connectionStatus: ConnectionStatus = "closed";

  constructor() {
    super();
    onUnauthorized(() => this.signedOut());
  }

  private changed(): void {
    this.dispatchEvent(new Event("change"));
  }

  private signedIn(answer: AuthAnswer): void {
    setCsrfToken(answer.csrf_token);
    this.user = answer.user;
    this.connection?.close();
    const connection = new HubConnection();
    this.connection = connection;
    connection.onStatus((status) => {
      this.connectionStatus = status;
      if (status === "auth_invalid") this.signedOut();
      this.changed();
    });
    this.entities.attach(connection);
    connection.open();
    this.changed();
  }

  private signedOut(): void {
    if (!this.user && !this.connection) return;
    this.user = null;
    setCsrfToken(null);
    this.entities.detach();
    const connection = this.connection;
    this.connection = null;
    connection?.close();
    this.changed();
  }

  /** Resume a session from the cookie; false when there is none. */
  async restore(): Promise<boolean> {
    try {
      this.signedIn(await api.get<AuthAnswer>("/api/auth/me"));
      return true;
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.notAvailable)) return false;
      throw err;
    }
  }

  async login(username: string, password: string): Promise<void> {
    this.signedIn(await api.post<AuthAnswer>("/api/auth/login", { username, password }));
  }

  async onboard(username: string, password: string): Promise<void> {
    this.signedIn(await api.post<AuthAnswer>("/api/onboarding", { username, password }));
  }

  async logout(): Promise<void> {
    try {
      await api.post("/api/auth/logout");
    } finally {
      this.signedOut();
    }
  }

  /** Whether the user may control chargers, alerts, automations (operator or admin). */
  get canOperate(): boolean {
    return this.user?.role === "admin" || this.user?.role === "operator";
  }

  get isAdmin(): boolean {
    return this.user?.role === "admin";
  }

  /** Call a service over the WebSocket when connected, else over REST. */
  async callService(
    domain: string,
    service: string,
    data: Record<string, unknown>,
    target?: Record<string, unknown>,
  ): Promise<unknown> {
    if (this.connection?.status === "connected") {
      // The WebSocket answers {result}, as REST does: the service's result either way.
      const answer = (await this.connection.callService(domain, service, data, target)) as {
        result?: unknown;
      } | null;
      return answer?.result ?? null;
    }
    const answer = await api.post<{ result: unknown }>(`/api/services/${domain}/${service}`, {
      data,
      target,
    });
    return answer?.result ?? null;
  }
}

export const session = new Session();
