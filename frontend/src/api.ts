// REST client for the hub's HTTP API: session cookie plus X-CSRF-Token on every non-GET request.

export interface User {
  id: string;
  username: string;
  role: "admin" | "operator" | "viewer";
  created_at: string | number;
}

export interface Port {
  device_id: string;
  number: number;
  name: string;
  status: string | null;
  error_code: string | null;
  power_w: number | null;
  energy_wh: number | null;
  session_energy_wh: number | null;
  uptime_pct: number | null;
  entities: Record<string, string>;
}

export interface Station {
  device_id: string;
  name: string;
  charge_point_id: string | null;
  protocol: string | null;
  online: boolean;
  connectivity: string | null;
  status: string | null;
  vendor: string | null;
  model: string | null;
  serial: string | null;
  firmware: string | null;
  last_seen: string | null;
  capabilities: string[];
  ports: Port[];
  site: string | null;
  entities?: Record<string, string>;
}

export interface Alert {
  id: string;
  key: string;
  title: string;
  message: string;
  severity: string;
  source: string;
  raised_at: number;
  last_seen_at: number;
  station_id: string | null;
  device_id: string | null;
  entity_id: string | null;
  state: "open" | "acknowledged" | "resolved";
  count: number;
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  resolved_at: number | null;
  resolved_by: string | null;
  resolution: string | null;
  /** The usernames behind acknowledged_by / resolved_by (the ids), where they are users. */
  acknowledged_by_name?: string | null;
  resolved_by_name?: string | null;
}

export interface SecurityEvent {
  id: number;
  time: number;
  kind: string;
  severity: string;
  source: string;
  message: string;
  remote: string | null;
  charge_point_id: string | null;
  data: Record<string, unknown>;
}

export interface AuditEntry {
  time: string | number;
  user_id: string | null;
  username: string | null;
  source: string;
  action: string;
  target: unknown;
  result: unknown;
  /** What the action sent (the ids targeted, a limit, a reset type; secrets redacted). */
  data?: Record<string, unknown> | null;
}

/** How an automation's latest finished run ended (GET /api/automations). */
export interface AutomationRun {
  run_id: string;
  started: number;
  finished: number;
  outcome: "finished" | "error" | "stopped" | "condition_failed" | "cancelled" | string;
  error: string | null;
}

export interface Automation {
  id: string;
  alias: string;
  description: string | null;
  enabled: boolean;
  mode: string;
  last_triggered: string | number | null;
  running: number | boolean;
  last_run?: AutomationRun | null;
}

export interface PendingCharger {
  charge_point_id: string;
  integration?: string;
  remote: string | null;
  first_seen: string | number;
  /** What the charger said of itself at boot (OCPP BootNotification). */
  vendor?: string | null;
  model?: string | null;
  serial?: string | null;
  /** Its station in the device registry while it waits (named after approval). */
  device_id?: string | null;
}

/** A site (GET /api/sites) with the number of stations filed under it. */
export interface Site {
  id: string;
  name: string | null;
  integration: string;
  stations: number;
}

/** A long-lived access token as listed (GET /api/tokens): never its value. */
export interface AccessToken {
  id: string;
  user_id: string;
  username: string | null;
  name: string;
  created_at: number;
  last_used_at: number | null;
  expires_at: number | null;
}

/** POST /api/tokens: the token's value, shown this once. */
export interface CreatedToken {
  id: string;
  name: string;
  token: string;
  created_at: number;
  expires_at: number | null;
}

/** A persistent notification (GET /api/notifications); "failed": a delivery that failed. */
export interface HubNotification {
  id: string;
  title: string | null;
  message: string;
  status: "unread" | "read" | "failed";
  created_at: number;
  notifier: string | null;
  error: string | null;
}

export interface UptimePort {
  station_id: string;
  station_name: string | null;
  charge_point_id: string | null;
  port_id: string;
  connector: number | null;
  name: string;
  /** NEVI (23 CFR 680.116(b)); the cec_ fields are the CEC figures, under their own rules. */
  uptime_pct: number | null;
  outage_minutes: number;
  excluded_minutes: number;
  cec_uptime_pct?: number | null;
  cec_excluded_minutes?: number;
  window_minutes: number;
  first_year?: boolean;
  outages: number;
}

export interface UptimeStation {
  station_id: string;
  name: string | null;
  charge_point_id: string | null;
  ports: number;
  uptime_pct: number | null;
  outage_minutes: number;
  excluded_minutes: number;
  cec_uptime_pct?: number | null;
  cec_excluded_minutes?: number;
}

/** GET /api/uptime: per port, per station and the fleet over a window (default: this month). */
export interface UptimeReport {
  start: string;
  end: string;
  until: string;
  time_zone: string;
  target_pct: number;
  cec_target_pct?: number;
  ports: UptimePort[];
  stations: UptimeStation[];
  fleet_uptime_pct: number | null;
  fleet_cec_uptime_pct?: number | null;
}

export interface MonthlyRow {
  station_id: string;
  station_name: string | null;
  port_id: string;
  connector: number | null;
  name: string;
  month: string;
  start: string;
  end: string;
  uptime_pct: number | null;
  outage_minutes: number;
  excluded_minutes: number;
  cec_uptime_pct?: number | null;
  cec_excluded_minutes?: number;
  window_minutes: number;
}

/** GET /api/uptime/monthly?year=YYYY */
export interface MonthlyUptime {
  year: number;
  time_zone: string;
  target_pct: number;
  cec_target_pct?: number;
  rows: MonthlyRow[];
}

/** Figures of GET /api/charge_success (rates are ratios 0-1, null with nothing judged). */
export interface ChargeSuccessFigures {
  attempts: number;
  successful: number;
  failed: number;
  failed_no_session: number;
  failed_low_energy: number;
  failed_stop_reason: number;
  failed_faulted: number;
  in_progress: number;
  success_rate: number | null;
  visits: number;
  successful_visits: number;
  visit_success_rate: number | null;
  attempts_per_visit: number | null;
  error_codes: Record<string, number>;
}

export interface ChargeSuccessTotal extends ChargeSuccessFigures {
  group: "port" | "station" | "site";
  id: string | null;
  name: string;
  station_id: string | null;
  site_id: string | null;
}

/** GET /api/charge_success?start=&end=&group=&by=[&station_id=] */
export interface ChargeSuccessReport {
  start: string;
  end: string;
  time_zone: string;
  group: string;
  by: string;
  rows: (ChargeSuccessTotal & { period: string; start: string; end: string })[];
  totals: ChargeSuccessTotal[];
  overall: ChargeSuccessFigures;
}

/** The reasons a lock (charger.set_availability) may give; each excludes its time from uptime. */
export const LOCK_REASONS: readonly { value: string; label: string }[] = [
  { value: "maintenance", label: "Scheduled maintenance" },
  { value: "utility_power", label: "Utility power interruption" },
  { value: "vandalism", label: "Vandalism" },
  { value: "natural_disaster", label: "Natural disaster" },
  { value: "vehicle", label: "Vehicle fault" },
  { value: "outside_hours", label: "Outside operating hours" },
];

/** An uptime exclusion (GET/POST/PATCH /api/uptime/exclusions). */
export interface Exclusion {
  exclusion_id: string;
  port_id: string | null;
  station_id: string | null;
  /** What it covers, named: a port, a station, or "site". */
  target: string;
  start: string;
  end: string | null;
  reason: string;
  note: string | null;
}

/** Every reason an exclusion may give: the causes the uptime rules exclude (the lock's). */
export const EXCLUSION_REASONS: readonly string[] = LOCK_REASONS.map((r) => r.value);

/** GET /api/uptime/daily: the fleet's uptime per day of the hub's zone. */
export interface UptimeDaily {
  days: number;
  time_zone: string;
  target_pct: number;
  cec_target_pct: number;
  ports: number;
  rows: { date: string; start: string; end: string; uptime_pct: number | null; cec_uptime_pct: number | null; outage_minutes: number }[];
}

/** GET /api/statistics/fleet: energy and sessions of all stations per hour or day. */
export interface FleetStatistics {
  start: string;
  end: string;
  period: "hour" | "day";
  time_zone: string;
  stations: number;
  energy_kwh: number;
  sessions: number;
  rows: { start: string; end: string; energy_kwh: number; sessions: number; average_power_kw: number }[];
}

export interface StatisticsRow {
  start: string;
  end: string;
  energy_kwh: number;
  sessions: number;
  charging_percent: number;
  occupied_percent: number;
  peak_power_kw: number;
}

export interface StatisticsSummary {
  device_id: string;
  name: string | null;
  start: string;
  end: string;
  period: "hour" | "day";
  /** The hub's time zone (IANA): the periods are its hours and days. */
  time_zone: string;
  kind: "station" | "port";
  ports: string[];
  energy_kwh: number;
  sessions: number;
  charging_percent: number;
  occupied_percent: number;
  peak_power_kw: number;
  failed_sessions: { station_id: string; port_id: string; transaction_id: string; started_at: string; error_code: string }[];
  error_codes: Record<string, number>;
  busiest_hours: number[];
}

/** GET /api/statistics */
export interface Statistics {
  rows: StatisticsRow[];
  summary: StatisticsSummary;
}

/** A recorded charging session (GET /api/sessions). */
export interface ChargingSession {
  station_id: string;
  transaction_id: string;
  port_id: string | null;
  port: number | null;
  charge_point_id: string | null;
  id_tag: string | null;
  started_at: string | null;
  stopped_at: string | null;
  duration_s: number | null;
  energy_wh: number | null;
  peak_power_w: number | null;
  stop_reason: string | null;
  error_code: string | null;
}

export interface HistoryPoint {
  state: string;
  attributes: Record<string, unknown>;
  last_changed: string;
}

/** An error answer from the hub: status and the body's error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The endpoint does not exist on this hub (yet): 404 "no_endpoint" or a 501. */
  get notAvailable(): boolean {
    return this.code === "not_available";
  }

  get unauthorized(): boolean {
    return this.status === 401;
  }
}

let csrfToken: string | null = null;

/** Remember the CSRF token the hub gave at login, onboarding or /api/auth/me. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Call back when any request answers 401 (the session ended). */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

/**
 * Whether an error answer means "no such endpoint" rather than "no such thing": the hub
 * answers an unknown API path with the code "no_endpoint" ("not_found" names a missing
 * thing behind a real endpoint); a 501 is a feature the hub does not offer.
 */
export function isMissingRoute(status: number, code: string): boolean {
  return code === "no_endpoint" || code === "not_available" || status === 501;
}

async function errorFrom(response: Response): Promise<ApiError> {
  const text = await response.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (body && typeof body === "object" && "error" in body) {
    const { error, message } = body as { error: unknown; message?: unknown };
    if (isMissingRoute(response.status, String(error))) {
      return new ApiError(response.status, "not_available", "This hub does not offer this yet.");
    }
    return new ApiError(response.status, String(error), String(message ?? error));
  }
  // A plain-text 404/405 comes from the router, not from a handler: no such endpoint.
  if (response.status === 404 || response.status === 405 || response.status === 501) {
    return new ApiError(response.status, "not_available", "This hub does not offer this yet.");
  }
  return new ApiError(response.status, "http_" + response.status, text || response.statusText);
}

/** Send a request; JSON in, JSON out (null for 204). Throws ApiError. */
export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "network", `The hub cannot be reached (${String(err)}).`);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (error.status === 401 && !path.startsWith("/api/auth/")) {
      for (const listener of unauthorizedListeners) listener();
    }
    throw error;
  }
  if (response.status === 204) return null as T;
  const type = response.headers.get("Content-Type") ?? "";
  if (!type.includes("json")) return (await response.text()) as T;
  return (await response.json()) as T;
}

export const api = {
  get: <T>(path: string) => request<T>("GET", path),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, body ?? {}),
  patch: <T>(path: string, body: unknown) => request<T>("PATCH", path, body),
  delete: <T>(path: string) => request<T>("DELETE", path),
};

/** Build a query string from the defined values. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
