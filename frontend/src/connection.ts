// WebSocket API client: cookie auth, commands with ids, reconnect with backoff, and
// subscriptions that are set up again after every reconnect.

import type { User } from "./api.js";

export interface EntityState {
  s: string;
  a: Record<string, unknown>;
  lc: number;
  lu: number;
}

export interface EntityDiff {
  "+"?: Partial<EntityState>;
  "-"?: { a?: string[] };
}

export interface EntitiesMessage {
  a?: Record<string, EntityState>;
  c?: Record<string, EntityDiff>;
  r?: string[];
}

export interface HubEvent {
  event_type: string;
  data: Record<string, unknown>;
  time_fired: string;
  context: { id: string; user_id: string | null };
}

export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "closed" | "auth_invalid";

interface Pending {
  resolve: (value: unknown) => void;
  reject: (reason: Error) => void;
}

interface Subscription {
  message: Record<string, unknown>;
  callback: (event: unknown) => void;
  /** Called after each (re)subscribe succeeded, before the first event arrives. */
  onSubscribed?: () => void;
  id: number | null;
}

/** An error answer to a WebSocket command. */
export class CommandError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "CommandError";
  }
}

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 30_000;

/** Delay before reconnect attempt n (0-based): doubling, capped, with jitter. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** attempt);
  return Math.round(base / 2 + (random() * base) / 2);
}

export class HubConnection {
  status: ConnectionStatus = "closed";
  user: User | null = null;
  private socket: WebSocket | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private subscriptions = new Set<Subscription>();
  private byId = new Map<number, Subscription>();
  private attempt = 0;
  private retryTimer: number | null = null;
  private wanted = false;
  private statusListeners = new Set<(status: ConnectionStatus) => void>();

  constructor(private readonly url: string = HubConnection.defaultUrl()) {}

  static defaultUrl(): string {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/api/websocket`;
  }

  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  private setStatus(status: ConnectionStatus): void {
    this.status = status;
    for (const listener of this.statusListeners) listener(status);
  }

  /** Open the socket (and keep it open until close()). */
  open(): void {
    this.wanted = true;
    if (this.socket) return;
    this.connect();
  }

  /** Close for good: no reconnect. */
  close(): void {
    this.wanted = false;
    if (this.retryTimer !== null) window.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    socket?.close();
    this.failPending(new CommandError("closed", "connection closed"));
    this.setStatus("closed");
  }

  private connect(): void {
    this.setStatus(this.attempt === 0 ? "connecting" : "reconnecting");
    const socket = new WebSocket(this.url);
    this.socket = socket;
    let authenticated = false;
    socket.onmessage = (message) => {
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(String(message.data)) as Record<string, unknown>;
      } catch {
        return;
      }
      if (!authenticated) {
        if (data.type === "auth_required") {
          socket.send(JSON.stringify({ type: "auth" }));
        } else if (data.type === "auth_ok") {
          authenticated = true;
          this.attempt = 0;
          this.user = (data.user as User | undefined) ?? null;
          this.setStatus("connected");
          this.resubscribe();
        } else if (data.type === "auth_invalid") {
          this.wanted = false;
          this.setStatus("auth_invalid");
        }
        return;
      }
      this.dispatch(data);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.failPending(new CommandError("disconnected", "connection lost"));
      for (const sub of this.subscriptions) sub.id = null;
      this.byId.clear();
      if (this.wanted) this.scheduleReconnect();
      else if (this.status !== "auth_invalid") this.setStatus("closed");
    };
    socket.onerror = () => {
      // onclose follows and does the reconnecting.
    };
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.setStatus("reconnecting");
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = null;
      if (this.wanted && !this.socket) this.connect();
    }, delay);
  }

  private failPending(error: Error): void {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }

  private dispatch(data: Record<string, unknown>): void {
    const id = typeof data.id === "number" ? data.id : null;
    if (id === null) return;
    if (data.type === "event") {
      this.byId.get(id)?.callback(data.event);
      return;
    }
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    if (data.type === "pong") {
      pending.resolve(null);
    } else if (data.success === false) {
      const error = (data.error ?? {}) as { code?: string; message?: string };
      pending.reject(new CommandError(error.code ?? "unknown", error.message ?? "command failed"));
    } else {
      pending.resolve(data.result);
    }
  }

  private send(message: Record<string, unknown>): { id: number; done: Promise<unknown> } {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN || this.status !== "connected") {
      return { id: -1, done: Promise.reject(new CommandError("not_connected", "not connected")) };
    }
    const id = this.nextId++;
    const done = new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
    });
    socket.send(JSON.stringify({ ...message, id }));
    return { id, done };
  }

  /** Send one command and wait for its result. */
  command<T = unknown>(message: Record<string, unknown>): Promise<T> {
    return this.send(message).done as Promise<T>;
  }

  private subscribeOne(sub: Subscription): void {
    const { id, done } = this.send(sub.message);
    if (id < 0) return;
    sub.id = id;
    this.byId.set(id, sub);
    sub.onSubscribed?.();
    done.catch(() => {
      this.byId.delete(id);
      sub.id = null;
    });
  }

  private resubscribe(): void {
    for (const sub of this.subscriptions) this.subscribeOne(sub);
  }

  /** Subscribe with a command whose events go to callback, across reconnects. */
  subscribe(
    message: Record<string, unknown>,
    callback: (event: unknown) => void,
    onSubscribed?: () => void,
  ): () => void {
    const sub: Subscription = { message, callback, onSubscribed, id: null };
    this.subscriptions.add(sub);
    if (this.status === "connected") this.subscribeOne(sub);
    return () => {
      this.subscriptions.delete(sub);
      if (sub.id !== null) {
        this.byId.delete(sub.id);
        if (sub.message.type === "subscribe_events" || sub.message.type === "subscribe_entities") {
          this.command({ type: "unsubscribe_events", subscription: sub.id }).catch(() => {});
        }
        sub.id = null;
      }
    };
  }

  /** Follow bus events (all, or one type). */
  subscribeEvents(callback: (event: HubEvent) => void, eventType?: string): () => void {
    const message: Record<string, unknown> = { type: "subscribe_events" };
    if (eventType) message.event_type = eventType;
    return this.subscribe(message, (event) => callback(event as HubEvent));
  }

  /** Call a service; same roles and audit as REST. */
  callService(
    domain: string,
    service: string,
    serviceData: Record<string, unknown> = {},
    target?: Record<string, unknown>,
  ): Promise<unknown> {
    const message: Record<string, unknown> = { type: "call_service", domain, service, service_data: serviceData };
    if (target) message.target = target;
    return this.command(message);
  }
}
