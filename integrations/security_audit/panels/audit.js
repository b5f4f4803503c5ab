// The security audit page (integrations/security_audit registers it with placement="page",
// for admins; frontend/src/pages/panel.ts describes the contract): the dashboard sets `hub`
// ({ api, user }) and then connects the element.
//
// It shows the last audit's findings (GET /api/security_audit/findings), worst first, each
// with its severity, what it is about, where it is written and the fix, and a button that
// runs the audit again now (POST /api/security_audit/run).
//
// Plain ES module, no build step, light DOM (the dashboard's CSS applies), no inline styles
// or scripts (the dashboard's CSP). Every text from the hub is set as text, never as HTML.

// The dashboard's badge colours for each severity.
const BADGE = { high: "bad", medium: "warn", low: "ok" };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "data") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "disabled") node.disabled = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmtTime(value) {
  if (typeof value !== "number") return "never";
  const date = new Date(value * 1000);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

function errorText(err) {
  return err && typeof err.message === "string" && err.message ? err.message : String(err);
}

class SecurityAuditPanel extends HTMLElement {
  constructor() {
    super();
    this.hub = null;
    this._result = null;
    this._error = null;
    this._busy = false;
  }

  connectedCallback() {
    this.classList.add("security-audit");
    this._render();
    this._load();
  }

  async _load() {
    try {
      this._result = await this.hub.api.get("/api/security_audit/findings");
      this._error = null;
    } catch (err) {
      this._error = errorText(err);
    }
    this._render();
  }

  async _runNow() {
    this._busy = true;
    this._render();
    try {
      this._result = await this.hub.api.post("/api/security_audit/run", {});
      this._error = null;
    } catch (err) {
      this._error = errorText(err);
    }
    this._busy = false;
    this._render();
  }

  _render() {
    const result = this._result;
    const counts = (result && result.counts) || {};
    const findings = (result && Array.isArray(result.findings) && result.findings) || [];
    const header = el(
      "div",
      { class: "toolbar" },
      el("h1", { text: "Security audit" }),
      el("button", {
        type: "button",
        class: "primary",
        text: this._busy ? "Running…" : "Run now",
        disabled: this._busy,
        "data-run": true,
        onclick: () => this._runNow(),
      }),
    );
    const parts = [header];
    if (this._error) parts.push(el("p", { class: "error", role: "alert", text: this._error }));
    if (result) {
      parts.push(
        el("p", {
          class: "muted",
          "data-summary": true,
          text:
            `Last run ${fmtTime(result.ran_at)}: ${findings.length} finding(s), ` +
            `${counts.high || 0} high, ${counts.medium || 0} medium, ${counts.low || 0} low.` +
            " Run from the command line with `evhub audit --config DIR`.",
        }),
      );
      if (result.error) parts.push(el("p", { class: "error", text: `Cannot audit: ${result.error}` }));
      if (!findings.length && !result.error && result.ran_at) {
        parts.push(el("p", { "data-clean": true, text: "No findings: nothing the audit checks is wrong." }));
      }
      if (findings.length) {
        const rows = findings.map((f) =>
          el(
            "tr",
            { data: { severity: f.severity, check: f.check } },
            el("td", {}, el("span", { class: `badge ${BADGE[f.severity] || ""}`, text: f.severity })),
            el("td", { text: f.check }),
            el("td", { text: f.subject }),
            el("td", { text: f.message }),
            el("td", { text: f.fix }),
            el("td", { text: f.where || "—" }),
          ),
        );
        parts.push(
          el(
            "div",
            { class: "scroll-x" },
            el(
              "table",
              { class: "data" },
              el(
                "thead",
                {},
                el(
                  "tr",
                  {},
                  ["Severity", "Check", "About", "Finding", "Fix", "Where"].map((h) =>
                    el("th", { scope: "col", text: h }),
                  ),
                ),
              ),
              el("tbody", {}, rows),
            ),
          ),
        );
      }
    } else if (!this._error) {
      parts.push(el("p", { class: "muted", text: "Loading…" }));
    }
    this.replaceChildren(...parts);
  }
}

if (!customElements.get("evhub-security-audit-panel")) {
  customElements.define("evhub-security-audit-panel", SecurityAuditPanel);
}
