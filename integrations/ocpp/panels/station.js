// The OCPP section of the station page (integrations/ocpp/features/panels.py registers it
// with placement="station"; frontend/src/pages/panel.ts describes the contract): the
// dashboard sets `hub` ({ api, user }) and `station` ({ device_id, charge_point_id, name })
// and then connects the element.
//
// It shows, for one station, the stored device-model report, the variable monitors, the
// installed certificates, the local list version, the reservations, the display messages and
// the firmware requests, each in a part of its own with the actions the user's role allows
// (the roles come from the hub: GET /api/ocpp/stations/<id> says which role each service
// needs). A part that asks the station says "offline" when it is not connected; a failed call
// shows its error in its part; nothing here may break the page.
//
// Plain ES module, no build step, light DOM (the dashboard's CSS applies), no inline styles
// or scripts (the dashboard's CSP). Every text a charger or a user gave is set as text, never
// as HTML.

const V201 = "ocpp2.0.1";
const RANK = { viewer: 0, operator: 1, admin: 2 };
const MAX_ROWS = 300; // report rows shown at once; the filter narrows the rest
const REPORT_RELOAD_MS = [3000, 10000]; // after a report request: look again then

const MONITOR_TYPES = ["UpperThreshold", "LowerThreshold", "Delta", "Periodic", "PeriodicClockAligned"];
const REPORT_BASES = ["FullInventory", "ConfigurationInventory", "SummaryInventory"];
const CERTIFICATE_TYPES_201 = [
  "CSMSRootCertificate",
  "ManufacturerRootCertificate",
  "V2GRootCertificate",
  "MORootCertificate",
];
const CERTIFICATE_TYPES_16 = ["CentralSystemRootCertificate", "ManufacturerRootCertificate"];
const PRIORITIES = ["NormalCycle", "InFront", "AlwaysFront"];
const DISPLAY_STATES = ["Charging", "Faulted", "Idle", "Unavailable"];

// DOM helpers ----------------------------------------------------------------------------

/** An element: props are attributes, except class, text, data (dataset), on* (listeners)
 * and the form properties value/checked/disabled/hidden. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "data") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (["value", "checked", "disabled", "hidden"].includes(key)) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function text(value) {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}

/** A time the hub gave: ISO text or POSIX seconds. */
function fmtTime(value) {
  if (value === null || value === undefined || value === "") return "—";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(String(value));
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

function errorText(err) {
  if (err && typeof err.message === "string" && err.message) return err.message;
  return String(err);
}

function isOffline(err) {
  return /\boffline\b/i.test(errorText(err));
}

function statusOf(answer) {
  if (answer && typeof answer === "object" && "status" in answer) return answer.status;
  return answer;
}

/** Ask before something that cannot be undone; resolves true when confirmed. */
function confirmDialog(title, message, confirmLabel) {
  return new Promise((resolve) => {
    const cancel = el("button", { type: "button", class: "secondary", text: "Cancel" });
    const ok = el("button", { type: "button", class: "primary danger", text: confirmLabel, "data-confirm": true });
    const heading = el("h2", { id: "ocpp-confirm-title", text: title });
    const dialog = el(
      "dialog",
      { class: "confirm-dialog ocpp-confirm", "aria-labelledby": "ocpp-confirm-title" },
      heading,
      el("p", { text: message }),
      el("div", { class: "dialog-buttons" }, cancel, ok),
    );
    document.body.append(dialog);
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      if (dialog.open) dialog.close();
      dialog.remove();
      resolve(value);
    };
    cancel.addEventListener("click", () => finish(false));
    ok.addEventListener("click", () => finish(true));
    dialog.addEventListener("close", () => finish(false));
    dialog.showModal();
    cancel.focus();
  });
}

function table(headers, rows, className = "data") {
  return el(
    "div",
    { class: "scroll-x" },
    el(
      "table",
      { class: className },
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows),
    ),
  );
}

function facts(pairs) {
  return el(
    "dl",
    { class: "facts" },
    pairs.filter(Boolean).flatMap(([label, value]) => [el("dt", { text: label }), el("dd", {}, value)]),
  );
}

function select(name, label, options, value) {
  return el(
    "label",
    {},
    label,
    el(
      "select",
      { name },
      options.map(([optionValue, optionLabel]) =>
        el("option", { value: optionValue, text: optionLabel, selected: optionValue === value }),
      ),
    ),
  );
}

function input(name, label, props = {}) {
  return el("label", {}, label, el("input", { name, ...props }));
}

// Parts -----------------------------------------------------------------------------------

/** One part of the section: a heading, a status line, its content and its actions. */
class Part {
  constructor(key, title) {
    this.key = key;
    this.message = el("p", { class: "ocpp-message", hidden: true, "aria-live": "polite" });
    this.body = el("div", { class: "ocpp-body" });
    this.actions = el("div", { class: "ocpp-actions" });
    this.node = el(
      "section",
      { class: "ocpp-part", data: { part: key } },
      el("h3", { text: title }),
      this.message,
      this.body,
      this.actions,
    );
    // Through the CSSOM: the dashboard's CSP allows no style attributes or elements.
    this.node.style.borderTop = "1px solid var(--border)";
    this.node.style.marginTop = "1rem";
    this.node.style.paddingTop = ".75rem";
  }

  loading() {
    this.body.replaceChildren(el("p", { class: "muted loading", role: "status", text: "Loading…" }));
  }

  show(...nodes) {
    this.body.replaceChildren(...nodes);
  }

  muted(message, data = {}) {
    this.body.replaceChildren(el("p", { class: "muted", data, text: message }));
  }

  offline() {
    this.muted("Offline: the station is not connected, so it cannot be asked now.", { offline: "" });
  }

  error(err) {
    if (isOffline(err)) {
      this.offline();
      return;
    }
    this.body.replaceChildren(el("p", { class: "error-box", role: "alert", text: errorText(err) }));
  }

  /** The outcome of an action, above the content: text, or an error. */
  say(message, isError = false) {
    this.message.hidden = false;
    this.message.className = isError ? "ocpp-message error-box" : "ocpp-message muted";
    this.message.setAttribute("role", isError ? "alert" : "status");
    this.message.textContent = message;
  }
}

class OcppStationSection extends HTMLElement {
  constructor() {
    super();
    this._hub = null;
    this._station = null;
    this._started = false;
    this._generation = 0;
    this._timers = new Set();
    this.info = null;
    this.parts = {};
  }

  set hub(value) {
    this._hub = value;
  }

  get hub() {
    return this._hub;
  }

  set station(value) {
    this._station = value;
  }

  get station() {
    return this._station;
  }

  connectedCallback() {
    if (this._started) return;
    this._started = true;
    this.classList.add("ocpp-station-section");
    this.render();
    void this.load();
  }

  disconnectedCallback() {
    for (const timer of this._timers) clearTimeout(timer);
    this._timers.clear();
    this._started = false;
    this._generation++;
  }

  later(ms, run) {
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      run();
    }, ms);
    this._timers.add(timer);
  }

  get cpId() {
    return this._station ? this._station.charge_point_id : null;
  }

  get role() {
    return (this._hub && this._hub.user && this._hub.user.role) || "viewer";
  }

  get online() {
    return Boolean(this.info && this.info.online);
  }

  get v201() {
    return Boolean(this.info && this.info.version === V201);
  }

  /** Whether the user's role may call an ocpp service (as the hub says it is registered). */
  may(service) {
    const needed = this.info && this.info.roles ? this.info.roles[service] : undefined;
    if (!needed || !(needed in RANK)) return false;
    return (RANK[this.role] ?? -1) >= RANK[needed];
  }

  async call(service, data = {}) {
    const answer = await this._hub.api.callService("ocpp", service, { charge_point_id: this.cpId, ...data });
    return answer;
  }

  render() {
    this.status = el("span", { class: "badge", data: { ocppConnection: "" }, text: "…" });
    this.version = el("span", { class: "muted" });
    this.problem = el("p", { class: "ocpp-problem", role: "alert", hidden: true });
    const reload = el("button", {
      type: "button",
      class: "small secondary",
      data: { ocppAction: "reload" },
      text: "Reload",
      onclick: () => void this.load(),
    });
    const parts = [
      ["report", "Device model report"],
      ["monitors", "Monitors"],
      ["certificates", "Installed certificates"],
      ["local-list", "Local authorization list"],
      ["reservations", "Reservations"],
      ["display-messages", "Display messages"],
      ["firmware", "Firmware requests"],
    ];
    this.parts = Object.fromEntries(parts.map(([key, title]) => [key, new Part(key, title)]));
    this.replaceChildren(
      el("div", { class: "button-row ocpp-toolbar" }, this.status, this.version, reload),
      this.problem,
      ...Object.values(this.parts).map((part) => part.node),
    );
  }

  async load() {
    const generation = ++this._generation;
    const cpId = this.cpId;
    if (!this._hub || !this._hub.api) {
      this.showProblem("The dashboard gave this section no hub to ask.");
      return;
    }
    if (!cpId) {
      this.showProblem("This station has no OCPP charge point id.");
      return;
    }
    for (const part of Object.values(this.parts)) part.loading();
    let info = null;
    try {
      info = await this._hub.api.get(`/api/ocpp/stations/${encodeURIComponent(cpId)}`);
    } catch (err) {
      if (generation !== this._generation) return;
      this.showProblem(errorText(err));
      for (const part of Object.values(this.parts)) part.muted("Not loaded.");
      return;
    }
    if (generation !== this._generation) return;
    this.info = info;
    this.problem.hidden = true;
    this.problem.className = "ocpp-problem";
    this.status.textContent = info.online ? "connected" : "offline";
    this.status.className = info.online ? "badge ok" : "badge";
    this.version.textContent = info.version ? `OCPP ${info.version.replace(/^ocpp/, "")}` : "";
    for (const key of Object.keys(this.parts)) void this.loadPart(key);
  }

  showProblem(message) {
    this.problem.hidden = false;
    this.problem.className = "ocpp-problem error-box";
    this.problem.textContent = message;
  }

  /** Read one part again and draw it with its actions. */
  async loadPart(key) {
    const part = this.parts[key];
    const loader = this[`load_${key.replace("-", "_")}`];
    if (!part || !loader) return;
    const generation = this._generation;
    part.loading();
    part.actions.replaceChildren();
    try {
      await loader.call(this, part, () => generation === this._generation);
    } catch (err) {
      if (generation === this._generation) part.error(err);
    }
  }

  /** Run an action of a part: say its outcome, reload the part; never throw. */
  async act(part, label, run, button) {
    if (button) button.disabled = true;
    try {
      const outcome = await run();
      if (outcome === null) return; // not confirmed
      part.say(`${label}: ${outcome}`);
      await this.loadPart(part.key);
    } catch (err) {
      part.say(`${label} failed: ${errorText(err)}`, true);
    } finally {
      if (button) button.disabled = false;
    }
  }

  actionButton(label, action, onclick, className = "small") {
    const button = el("button", { type: "button", class: className, data: { ocppAction: action }, text: label });
    button.addEventListener("click", () => onclick(button));
    return button;
  }

  /** A form of a part's action; submit collects its fields. */
  actionForm(part, action, fields, submitLabel, run) {
    const submit = el("button", { type: "submit", class: "small primary", text: submitLabel });
    const form = el("form", { class: "inline-form", data: { ocppForm: action } }, fields, submit);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      const values = Object.fromEntries(new FormData(form).entries());
      void this.act(part, submitLabel, () => run(values, form), submit);
    });
    return form;
  }

  needsStation(part, services) {
    if (!services.some((service) => this.may(service))) return false;
    if (this.online) return true;
    part.actions.replaceChildren(el("p", { class: "muted small", text: "Actions need the station to be connected." }));
    return false;
  }

  // The device-model report ----------------------------------------------------------------

  async load_report(part, current) {
    if (!this.v201) {
      part.muted("The device model and its reports are OCPP 2.0.1; this station speaks 1.6.");
      return;
    }
    let report = null;
    try {
      report = await this.call("get_stored_report");
    } catch (err) {
      if (!/no report/i.test(errorText(err))) throw err;
    }
    if (!current()) return;
    if (report) part.show(...this.reportView(report));
    else part.muted("No device-model report of this station is stored yet.");
    if (!this.needsStation(part, ["get_base_report"])) return;
    if (this.may("get_base_report")) {
      part.actions.append(
        this.actionForm(
          part,
          "request-report",
          [select("report_base", "Report", REPORT_BASES.map((b) => [b, b]), "FullInventory")],
          "Request report",
          async (values) => {
            const answer = await this.call("get_base_report", { report_base: values.report_base });
            const status = statusOf(answer);
            if (status === "Accepted") {
              for (const ms of REPORT_RELOAD_MS) this.later(ms, () => void this.loadPart("report"));
              return `${status}, the station is sending report ${answer.requestId}`;
            }
            return text(status);
          },
        ),
      );
    }
  }

  reportView(report) {
    const rows = [];
    for (const item of Array.isArray(report.report_data) ? report.report_data : []) {
      const component = item.component || {};
      const variable = item.variable || {};
      let where = text(component.name);
      if (component.instance) where += `:${component.instance}`;
      if (component.evse && component.evse.id !== undefined) {
        where += ` @EVSE ${component.evse.id}`;
        if (component.evse.connectorId !== undefined) where += `.${component.evse.connectorId}`;
      }
      let name = text(variable.name);
      if (variable.instance) name += `:${variable.instance}`;
      const attributes = Array.isArray(item.variableAttribute) && item.variableAttribute.length
        ? item.variableAttribute
        : [{}];
      for (const attribute of attributes) {
        rows.push([where, name, text(attribute.type || "Actual"), text(attribute.value), text(attribute.mutability)]);
      }
    }
    const tbody = el("tbody");
    const count = el("p", { class: "muted small", role: "status" });
    const filter = el("input", {
      type: "search",
      name: "filter",
      placeholder: "component, variable or value",
      "aria-label": "Filter the report",
    });
    const draw = () => {
      const needle = filter.value.trim().toLowerCase();
      const found = needle ? rows.filter((row) => row.join(" ").toLowerCase().includes(needle)) : rows;
      tbody.replaceChildren(
        ...found.slice(0, MAX_ROWS).map((row) => el("tr", {}, row.map((cell, i) => el("td", { class: i === 3 ? "wrap" : null, text: cell })))),
      );
      count.textContent =
        found.length > MAX_ROWS
          ? `${MAX_ROWS} of ${found.length} variables shown; filter to narrow.`
          : `${found.length} of ${rows.length} variables.`;
    };
    filter.addEventListener("input", draw);
    draw();
    const missing = Array.isArray(report.missing_seq_nos) && report.missing_seq_nos.length
      ? report.missing_seq_nos.join(", ")
      : null;
    return [
      facts([
        ["Request", text(report.request_id)],
        ["Kind", text(report.kind)],
        ["Generated", fmtTime(report.generated_at)],
        ["Received", fmtTime(report.completed_at)],
        ["Parts", text(report.parts)],
        missing && ["Missing parts", el("span", { class: "bad-text", text: missing })],
      ]),
      el("div", { class: "toolbar" }, el("label", { class: "search" }, "Filter", filter)),
      count,
      el(
        "div",
        { class: "scroll-x" },
        el(
          "table",
          { class: "data", data: { ocppTable: "report" } },
          el("thead", {}, el("tr", {}, ["Component", "Variable", "Attribute", "Value", "Mutability"].map((h) => el("th", { scope: "col", text: h })))),
          tbody,
        ),
      ),
    ];
  }

  // Monitors -------------------------------------------------------------------------------

  async load_monitors(part, current) {
    if (!this.v201) {
      part.muted("Variable monitors are OCPP 2.0.1; this station speaks 1.6.");
      return;
    }
    const answer = await this.call("get_monitors");
    if (!current()) return;
    const monitors = Array.isArray(answer && answer.monitors) ? answer.monitors : [];
    const canClear = this.may("clear_variable_monitoring") && this.online;
    if (!monitors.length) {
      part.muted("No monitors of this station are known.");
    } else {
      const headers = ["Id", "Component", "Variable", "Type", "Value", "Severity", "Kind"];
      if (canClear) headers.push("");
      part.show(
        table(
          headers,
          monitors.map((monitor) => {
            const component = monitor.component || {};
            const variable = monitor.variable || {};
            const cells = [
              text(monitor.id),
              text(component.name) + (component.evse ? ` @EVSE ${component.evse.id}` : ""),
              text(variable.name),
              text(monitor.type),
              text(monitor.value),
              text(monitor.severity),
              text(monitor.kind),
            ].map((cell) => el("td", { text: cell }));
            if (canClear) {
              cells.push(
                el(
                  "td",
                  {},
                  this.actionButton("Clear", "clear-monitor", (button) =>
                    this.act(
                      part,
                      `Clear monitor ${monitor.id}`,
                      async () => {
                        const ok = await confirmDialog(
                          "Clear monitor",
                          `Clear monitor ${monitor.id} (${text(component.name)} ${text(variable.name)}) on ${this._station.name}?`,
                          "Clear",
                        );
                        if (!ok) return null;
                        const result = await this.call("clear_variable_monitoring", { ids: [Number(monitor.id)] });
                        const first = (result && result.clearMonitoringResult && result.clearMonitoringResult[0]) || {};
                        return text(first.status);
                      },
                      button,
                    ),
                  "small danger",
                  ),
                ),
              );
            }
            return el("tr", { data: { monitorId: String(monitor.id) } }, cells);
          }),
        ),
      );
    }
    if (!this.needsStation(part, ["set_variable_monitoring"])) return;
    part.actions.append(
      this.actionForm(
        part,
        "set-monitor",
        [
          input("component", "Component", { required: true, maxlength: 50, placeholder: "EVSE" }),
          input("variable", "Variable", { required: true, maxlength: 50, placeholder: "Power" }),
          select("type", "Type", MONITOR_TYPES.map((t) => [t, t]), "UpperThreshold"),
          input("value", "Value", { type: "number", required: true, step: "any", min: -1e12, max: 1e12 }),
          input("severity", "Severity", { type: "number", required: true, min: 0, max: 9, step: 1, value: "5" }),
        ],
        "Set monitor",
        async (values) => {
          const result = await this.call("set_variable_monitoring", {
            monitors: [
              {
                component: { name: values.component },
                variable: { name: values.variable },
                type: values.type,
                value: Number(values.value),
                severity: Number(values.severity),
              },
            ],
          });
          const first = (result && result.setMonitoringResult && result.setMonitoringResult[0]) || {};
          return first.id !== undefined ? `${text(first.status)} (monitor ${first.id})` : text(first.status);
        },
      ),
    );
  }

  // Certificates ---------------------------------------------------------------------------

  async load_certificates(part, current) {
    if (!this.online) {
      part.offline();
      return;
    }
    const answer = await this.call("get_installed_certificate_ids");
    if (!current()) return;
    const certificates = Array.isArray(answer && answer.certificates) ? answer.certificates : [];
    const canDelete = this.may("delete_certificate");
    if (!certificates.length) {
      part.muted(`No certificates installed (the station answered ${text(statusOf(answer))}).`);
    } else {
      const headers = ["Type", "Hash algorithm", "Serial number", "Issuer name hash"];
      if (canDelete) headers.push("");
      part.show(
        table(
          headers,
          certificates.map((certificate) => {
            const hash = certificate.certificate_hash_data || {};
            const cells = [
              el("td", { text: text(certificate.certificate_type) }),
              el("td", { text: text(hash.hashAlgorithm) }),
              el("td", { class: "wrap" }, el("code", { text: text(hash.serialNumber) })),
              el("td", { class: "wrap" }, el("code", { class: "small", text: text(hash.issuerNameHash) })),
            ];
            if (canDelete) {
              cells.push(
                el(
                  "td",
                  {},
                  this.actionButton(
                    "Delete",
                    "delete-certificate",
                    (button) =>
                      this.act(
                        part,
                        "Delete certificate",
                        async () => {
                          const ok = await confirmDialog(
                            "Delete certificate",
                            `Delete the ${text(certificate.certificate_type)} with serial number ${text(hash.serialNumber)} from ${this._station.name}? The station may no longer trust what it signed.`,
                            "Delete",
                          );
                          if (!ok) return null;
                          const result = await this.call("delete_certificate", {
                            certificate_hash_data: {
                              hash_algorithm: hash.hashAlgorithm,
                              issuer_name_hash: hash.issuerNameHash,
                              issuer_key_hash: hash.issuerKeyHash,
                              serial_number: hash.serialNumber,
                            },
                          });
                          return text(statusOf(result));
                        },
                        button,
                      ),
                    "small danger",
                  ),
                ),
              );
            }
            return el("tr", { data: { serial: String(hash.serialNumber || "") } }, cells);
          }),
        ),
      );
    }
    if (!this.may("install_certificate")) return;
    const types = this.v201 ? CERTIFICATE_TYPES_201 : CERTIFICATE_TYPES_16;
    part.actions.append(
      this.actionForm(
        part,
        "install-certificate",
        [
          select("certificate_type", "Type", types.map((t) => [t, t]), types[0]),
          el(
            "label",
            { class: "search" },
            "Certificate (PEM)",
            el("textarea", { name: "certificate", required: true, maxlength: 5500, rows: 4, cols: 48 }),
          ),
        ],
        "Install certificate",
        async (values, form) => {
          const result = await this.call("install_certificate", {
            certificate_type: values.certificate_type,
            certificate: String(values.certificate).trim(),
          });
          form.reset();
          return text(statusOf(result));
        },
      ),
    );
  }

  // Local list -----------------------------------------------------------------------------

  async load_local_list(part, current) {
    if (!this.online) {
      part.offline();
      return;
    }
    const answer = await this.call("get_local_list_version");
    if (!current()) return;
    const supported = answer && answer.supported !== false;
    part.show(
      supported
        ? facts([
            ["Version on the station", el("span", { data: { ocppListVersion: "" }, text: text(answer.version) })],
            ["Last sent by the hub", text(answer.sent_version)],
            [
              "In sync",
              answer.in_sync
                ? "yes"
                : answer.sent_version
                  ? el("span", { class: "bad-text", text: "no" })
                  : "— (the hub has sent no list)",
            ],
          ])
        : el("p", { class: "muted", text: "The station has no local authorization list (version -1)." }),
    );
    if (!supported || !this.may("send_local_list")) return;
    part.actions.append(
      el(
        "div",
        { class: "button-row" },
        this.actionButton("Send list", "send-local-list", (button) =>
          this.act(
            part,
            "Send list",
            async () => {
              const ok = await confirmDialog(
                "Send the local list",
                `Send the hub's id tokens to ${this._station.name}'s local authorization list? Its list is replaced or updated to match the hub's.`,
                "Send",
              );
              if (!ok) return null;
              const result = await this.call("send_local_list");
              return `${text(statusOf(result))} (version ${text(result && result.version)}, ${text(result && result.sent)} entries)`;
            },
            button,
          ),
        ),
      ),
    );
  }

  // Reservations ---------------------------------------------------------------------------

  async load_reservations(part, current) {
    const answer = await this.call("reservations");
    if (!current()) return;
    const reservations = Array.isArray(answer) ? answer : [];
    const canCancel = this.may("cancel_reservation") && this.online;
    if (!reservations.length) {
      part.muted("No reservations.");
    } else {
      const headers = ["Id", this.v201 ? "EVSE" : "Connector", "Id token", "Expires"];
      if (canCancel) headers.push("");
      part.show(
        table(
          headers,
          reservations.map((reservation) => {
            const cells = [
              text(reservation.reservation_id),
              reservation.evse_id === null || reservation.evse_id === undefined ? "any" : String(reservation.evse_id),
              text(reservation.id_token),
              fmtTime(reservation.expires),
            ].map((cell) => el("td", { text: cell }));
            if (canCancel) {
              cells.push(
                el(
                  "td",
                  {},
                  this.actionButton(
                    "Cancel",
                    "cancel-reservation",
                    (button) =>
                      this.act(
                        part,
                        `Cancel reservation ${reservation.reservation_id}`,
                        async () => {
                          const ok = await confirmDialog(
                            "Cancel reservation",
                            `Cancel reservation ${reservation.reservation_id} for ${text(reservation.id_token)}?`,
                            "Cancel reservation",
                          );
                          if (!ok) return null;
                          const result = await this.call("cancel_reservation", {
                            reservation_id: Number(reservation.reservation_id),
                          });
                          return text(statusOf(result));
                        },
                        button,
                      ),
                    "small danger",
                  ),
                ),
              );
            }
            return el("tr", { data: { reservationId: String(reservation.reservation_id) } }, cells);
          }),
        ),
      );
    }
    if (!this.needsStation(part, ["reserve_now"])) return;
    const ports = Array.isArray(this.info.ports) ? this.info.ports : [];
    const choices = ports.map((port) => [String(port), String(port)]);
    if (this.v201) choices.unshift(["", "any"]);
    if (!choices.length) {
      part.actions.append(el("p", { class: "muted small", text: "No connector of this station is known yet." }));
      return;
    }
    part.actions.append(
      this.actionForm(
        part,
        "reserve",
        [
          select("evse_id", this.v201 ? "EVSE" : "Connector", choices, choices[0][0]),
          input("id_token", "Id token", { required: true, maxlength: this.v201 ? 36 : 20, autocomplete: "off" }),
          input("minutes", "Minutes", { type: "number", required: true, min: 1, max: 43200, step: 1, value: "15" }),
        ],
        "Reserve",
        async (values) => {
          const data = { id_token: String(values.id_token).trim(), expires_in: Number(values.minutes) * 60 };
          if (values.evse_id !== "") data.evse_id = Number(values.evse_id);
          const result = await this.call("reserve_now", data);
          return `${text(statusOf(result))} (reservation ${text(result && result.reservation_id)})`;
        },
      ),
    );
  }

  // Display messages -----------------------------------------------------------------------

  async load_display_messages(part, current) {
    if (!this.v201) {
      part.muted("Display messages are OCPP 2.0.1; this station speaks 1.6.");
      return;
    }
    if (!this.online) {
      part.offline();
      return;
    }
    const answer = await this.call("get_display_messages");
    if (!current()) return;
    const messages = Array.isArray(answer && answer.messages) ? answer.messages : [];
    const canClear = this.may("clear_display_message");
    if (!messages.length) {
      part.muted(
        statusOf(answer) === "Accepted" ? "The station listed no messages." : "The station holds no display messages.",
      );
    } else {
      const headers = ["Id", "Priority", "State", "Message", "Shown"];
      if (canClear) headers.push("");
      const rows = messages.map((info) => {
        const content = info.message || {};
        const window = info.startDateTime || info.endDateTime
          ? `${fmtTime(info.startDateTime)} – ${fmtTime(info.endDateTime)}`
          : "always";
        const cells = [
          el("td", { text: text(info.id) }),
          el("td", { text: text(info.priority) }),
          el("td", { text: text(info.state) }),
          el("td", { class: "wrap", text: text(content.content) }),
          el("td", { text: window }),
        ];
        if (canClear) {
          cells.push(
            el(
              "td",
              {},
              this.actionButton(
                "Clear",
                "clear-display-message",
                (button) =>
                  this.act(
                    part,
                    `Clear message ${info.id}`,
                    async () => {
                      const ok = await confirmDialog(
                        "Clear display message",
                        `Remove message ${info.id} from ${this._station.name}'s display?`,
                        "Clear",
                      );
                      if (!ok) return null;
                      return text(statusOf(await this.call("clear_display_message", { message_id: Number(info.id) })));
                    },
                    button,
                  ),
                "small danger",
              ),
            ),
          );
        }
        return el("tr", { data: { messageId: String(info.id) } }, cells);
      });
      part.show(table(headers, rows));
      if (answer && answer.complete === false) {
        part.body.append(el("p", { class: "muted small", text: "The station's list did not arrive in full." }));
      }
    }
    if (!this.may("set_display_message")) return;
    part.actions.append(
      this.actionForm(
        part,
        "set-display-message",
        [
          el("label", { class: "search" }, "Message", el("input", { name: "message", required: true, maxlength: 512 })),
          select("priority", "Priority", PRIORITIES.map((p) => [p, p]), "NormalCycle"),
          select("state", "When", [["", "always"], ...DISPLAY_STATES.map((s) => [s, s])], ""),
        ],
        "Set message",
        async (values, form) => {
          const data = { message: String(values.message), priority: values.priority };
          if (values.state) data.state = values.state;
          const result = await this.call("set_display_message", data);
          form.reset();
          return `${text(statusOf(result))} (message ${text(result && result.message_id)})`;
        },
      ),
    );
  }

  // Firmware -------------------------------------------------------------------------------

  async load_firmware(part, current) {
    const answer = await this.call("get_firmware_updates");
    if (!current()) return;
    const requests = answer && typeof answer.requests === "object" && answer.requests ? answer.requests : {};
    const entries = Object.entries(requests).sort((a, b) => Number(b[0]) - Number(a[0]));
    if (!entries.length) {
      part.muted("No firmware requests are tracked for this station.");
      return;
    }
    part.show(
      table(
        ["Request", "Kind", "Location", "Sent", "Answer", "Status", "History"],
        entries.map(([id, request]) => {
          const history = Array.isArray(request.history) ? request.history : [];
          return el(
            "tr",
            { data: { requestId: id } },
            el("td", { text: id }),
            el("td", { text: text(request.kind) }),
            el("td", { class: "wrap", text: text(request.location) }),
            el("td", { text: fmtTime(request.sent_at) }),
            el("td", { text: text(request.answer) }),
            el("td", { text: text(request.status) }),
            el(
              "td",
              {},
              history.length
                ? el(
                    "ol",
                    { class: "small" },
                    history.map((step) =>
                      el("li", { text: `${text(Array.isArray(step) ? step[0] : step)} — ${fmtTime(Array.isArray(step) ? step[1] : null)}` }),
                    ),
                  )
                : "—",
            ),
          );
        }),
      ),
    );
  }
}

if (!customElements.get("ocpp-station-section")) {
  customElements.define("ocpp-station-section", OcppStationSection);
}
