// Client-side routing on the location hash, so any server path serves the same page.

export interface Route {
  name: string;
  params: Record<string, string>;
}

const patterns: [string, RegExp][] = [
  ["overview", /^\/?$/],
  ["chargers", /^\/chargers\/?$/],
  ["station", /^\/chargers\/(?<id>[^/]+)\/?$/],
  ["alerts", /^\/alerts\/?$/],
  ["security", /^\/security\/?$/],
  ["audit", /^\/audit\/?$/],
  ["automations", /^\/automations\/?$/],
  ["automation", /^\/automations\/(?<id>[^/]+)\/?$/],
  ["reports", /^\/reports\/?$/],
  ["success", /^\/success\/?$/],
  ["pending", /^\/pending\/?$/],
  ["users", /^\/users\/?$/],
  ["account", /^\/account\/?$/],
  ["notifications", /^\/notifications\/?$/],
  ["panel", /^\/panel\/(?<domain>[^/]+)\/(?<name>[^/]+)\/?$/],
];

/** The route of a hash like "#/chargers/abc". */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "").split("?")[0] || "/";
  for (const [name, pattern] of patterns) {
    const match = pattern.exec(path);
    if (match) {
      const params: Record<string, string> = {};
      for (const [key, value] of Object.entries(match.groups ?? {})) {
        params[key] = decodeURIComponent(value);
      }
      return { name, params };
    }
  }
  return { name: "not_found", params: {} };
}

export function href(path: string): string {
  return `#${path}`;
}

export function navigate(path: string): void {
  location.hash = path;
}
