// The Firmware page (integrations/firmware registers it with placement="page";
// frontend/src/pages/panel.ts describes the contract): the dashboard sets `hub` ({ api, user })
// and then connects the element.
//
// It shows the fleet's firmware by vendor and model, the stations below their model's
// minimum, and the roll-out campaigns with their progress. Everyone who sees the page reads;
// an admin starts a campaign (the stations of a vendor/model, or chosen ones) and pauses,
// resumes or cancels one. It reads and acts through the firmware.* services only, and looks
// again every few seconds while a campaign is under way.
//
// Plain ES module, no build step, light DOM (the dashboard's CSS applies), no inline styles
// or scripts (the dashboard's CSP). Every text a charger or a user gave is set as text, never
// as HTML.

const RANK = { viewer: 0, operator: 1, admin: 2 };
const RELOAD_MS = 5000; // while a campaign runs
const ITEM_STATES = ["pending", "updating", "done", "failed", "skipped", "cancelled"];

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

/** A time the hub gave: POSIX seconds. */
function fmtTime(value) {
  if (value === null || value === undefined || value === "") return "—";
  const date = new Date(Number(value) * 1000);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

function errorText(err) {
  if (err && typeof err.message === "string" && err.message) return err.message;
  return String(err);
}

function table(headers, rows) {
  return el(
    "div",
    { class: "scroll-x" },
    el(
      "table",
      { class: "data" },
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows),
    ),
  );
}

function input(name, label, props = {}) {
  return el("label", {}, label, el("input", { name, ...props }));
}

function section(key, title) {
  const body = el("div", { class: "firmware-body" });
  const node = el("section", { class: "card firmware-part", data: { part: key } }, el("h2", { text: title }), body);
  node.style.marginBottom = "1rem";
  return { node, body };
}

// The page ------------------------------------------------------------------------------

class FirmwarePanel extends HTMLElement {
  constructor() {
    super();
    this._hub = null;
    this._started = false;
    this._timer = null;
    this._generation = 0;
    this.inventory = null;
    this.campaigns = [];
  }

  set hub(value) {
    this._hub = value;
  }

  get hub() {
    return this._hub;
  }

  get role() {
    return (this._hub && this._hub.user && this._hub.user.role) || "viewer";
  }

  get admin() {
    return (RANK[this.role] ?? -1) >= RANK.admin;
  }

  connectedCallback() {
    if (this._started) return;
    this._started = true;
    this.classList.add("firmware-panel");
    this.render();
    void this.load();
  }

  disconnectedCallback() {
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    this._started = false;
    this._generation++;
  }

  call(service, data = {}) {
    return this._hub.api.callService("firmware", service, data);
  }

  render() {
    this.message = el("p", { class: "firmware-message", hidden: true, "aria-live": "polite" });
    this.parts = {
      flagged: section("flagged", "Below the minimum version"),
      models: section("models", "Firmware by vendor and model"),
      campaigns: section("campaigns", "Campaigns"),
    };
    if (this.admin) this.parts.start = section("start", "New campaign");
    this.replaceChildren(
      el("h1", { text: "Firmware" }),
      this.message,
      ...Object.values(this.parts).map((part) => part.node),
    );
    for (const part of Object.values(this.parts)) {
      part.body.replaceChildren(el("p", { class: "muted loading", role: "status", text: "Loading…" }));
    }
  }

  say(message, isError = false) {
    this.message.hidden = false;
    this.message.className = isError ? "firmware-message error-box" : "firmware-message muted";
    this.message.setAttribute("role", isError ? "alert" : "status");
    this.message.textContent = message;
  }

  async load() {
    const generation = this._generation;
    let inventory;
    let campaigns;
    try {
      [inventory, campaigns] = await Promise.all([this.call("inventory"), this.call("campaigns")]);
    } catch (err) {
      if (generation !== this._generation) return;
      for (const part of Object.values(this.parts)) {
        part.body.replaceChildren(el("p", { class: "error-box", role: "alert", text: errorText(err) }));
      }
      return;
    }
    if (generation !== this._generation) return;
    this.inventory = inventory || { stations: [], models: [], below_minimum: [] };
    this.campaigns = (campaigns && campaigns.campaigns) || [];
    this.showFlagged();
    this.showModels();
    this.showCampaigns();
    if (this.parts.start && !this.parts.start.body.querySelector("form")) this.showStart();
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    if (this.campaigns.some((c) => c.state === "running" || c.state === "paused")) {
      this._timer = setTimeout(() => {
        this._timer = null;
        void this.load();
      }, RELOAD_MS);
    }
  }

  showFlagged() {
    const rows = this.inventory.below_minimum || [];
    if (!rows.length) {
      this.parts.flagged.body.replaceChildren(
        el("p", { class: "muted", data: { empty: "" }, text: "No station runs firmware below its minimum." }),
      );
      return;
    }
    this.parts.flagged.body.replaceChildren(
      table(
        ["Station", "Vendor", "Model", "Firmware", "Minimum"],
        rows.map((row) =>
          el(
            "tr",
            { data: { flagged: row.device_id } },
            el("td", { text: text(row.name || row.device_id) }),
            el("td", { text: text(row.vendor) }),
            el("td", { text: text(row.model) }),
            el("td", { class: "error", text: text(row.firmware) }),
            el("td", { text: text(row.minimum) }),
          ),
        ),
      ),
    );
  }

  showModels() {
    const models = this.inventory.models || [];
    if (!models.length) {
      this.parts.models.body.replaceChildren(el("p", { class: "muted", text: "No stations yet." }));
      return;
    }
    this.parts.models.body.replaceChildren(
      table(
        ["Vendor", "Model", "Stations", "Versions", "Minimum", "Below"],
        models.map((model) =>
          el(
            "tr",
            { data: { model: `${model.vendor || ""}/${model.model || ""}` } },
            el("td", { text: text(model.vendor) }),
            el("td", { text: text(model.model) }),
            el("td", { text: String(model.stations) }),
            el("td", { text: (model.versions || []).map((v) => `${v.version} (${v.stations})`).join(", ") }),
            el("td", { text: text(model.minimum) }),
            el("td", { class: model.below_minimum ? "error" : "", text: String(model.below_minimum || 0) }),
          ),
        ),
      ),
    );
  }

  showCampaigns() {
    const body = this.parts.campaigns.body;
    if (!this.campaigns.length) {
      body.replaceChildren(el("p", { class: "muted", data: { empty: "" }, text: "No campaigns yet." }));
      return;
    }
    body.replaceChildren(...this.campaigns.map((campaign) => this.campaignCard(campaign)));
  }

  campaignCard(campaign) {
    const progress = campaign.progress || {};
    const counts = ITEM_STATES.filter((state) => progress[state]).map((state) => `${progress[state]} ${state}`);
    const bar = el("progress", { max: "100", value: String(progress.percent ?? 0) });
    bar.setAttribute("aria-label", `${campaign.name}: ${progress.percent ?? 0}%`);
    const actions = el("div", { class: "firmware-actions" });
    if (this.admin) {
      const act = (label, service, data = {}, danger = false) =>
        el("button", {
          type: "button",
          class: danger ? "secondary danger" : "secondary",
          text: label,
          data: { action: service },
          onclick: (event) => void this.act(event.currentTarget, service, { campaign_id: campaign.id, ...data }),
        });
      if (campaign.state === "running") actions.append(act("Pause", "pause"));
      if (campaign.state === "paused") {
        actions.append(act("Resume", "resume"));
        if (progress.failed) actions.append(act("Retry failed", "resume", { retry_failed: true }));
      }
      if (campaign.state === "running" || campaign.state === "paused") {
        actions.append(act("Cancel", "cancel", {}, true));
      }
    }
    const items = (campaign.items || []).map((item) =>
      el(
        "tr",
        { data: { item: item.device_id, state: item.state } },
        el("td", { text: text(item.name || item.device_id) }),
        el("td", { text: item.state }),
        el("td", { text: text(item.from_version) }),
        el("td", { text: text(item.version) }),
        el("td", { text: text(item.status) }),
        el("td", { text: text(item.error) }),
      ),
    );
    const details = el(
      "details",
      {},
      el("summary", { text: "Stations" }),
      table(["Station", "State", "From", "Now", "Last status", "Error"], items),
    );
    return el(
      "article",
      { class: "firmware-campaign", data: { campaign: campaign.id, state: campaign.state } },
      el(
        "h3",
        {},
        `${campaign.name} `,
        el("span", { class: "badge", data: { campaignState: "" }, text: campaign.state }),
        campaign.signed ? el("span", { class: "badge", data: { signed: "" }, text: "signed" }) : null,
      ),
      el(
        "p",
        { class: "muted" },
        `${campaign.version ? `to ${campaign.version}, ` : ""}${campaign.batch_size} at a time, `,
        `started ${fmtTime(campaign.created_at)}`,
      ),
      el("p", { class: "firmware-location", text: campaign.location }),
      campaign.reason && campaign.state !== "completed"
        ? el("p", { class: campaign.state === "paused" ? "error-box" : "muted", data: { reason: "" }, text: campaign.reason })
        : null,
      el("p", {}, bar, ` ${progress.percent ?? 0}% — ${counts.join(", ") || "nothing yet"}`),
      actions,
      details,
    );
  }

  async act(button, service, data) {
    button.disabled = true;
    try {
      await this.call(service, data);
      this.say(`${service}: done`);
    } catch (err) {
      this.say(errorText(err), true);
    } finally {
      button.disabled = false;
    }
    await this.load();
  }

  showStart() {
    const models = this.inventory.models || [];
    const stations = this.inventory.stations || [];
    const choice = el(
      "select",
      { name: "target" },
      el("option", { value: "", text: "Chosen stations (below)" }),
      models
        .filter((m) => m.vendor)
        .map((m) =>
          el("option", {
            value: JSON.stringify([m.vendor, m.model]),
            text: `Every ${m.vendor} ${m.model || ""} (${m.stations})`,
          }),
        ),
    );
    const defaults = this.inventory.defaults || { batch_size: 2, timeout_minutes: 30 };
    const boxes = stations
      .filter((s) => s.can_update)
      .map((s) => {
        const box = el("input", { type: "checkbox", name: "station", value: s.device_id });
        box.style.width = "auto";
        box.style.margin = "0 .5rem 0 0";
        const label = el(
          "label",
          { class: "checkbox" },
          box,
          `${s.name || s.device_id} (${s.vendor || "?"} ${s.model || ""} ${s.firmware || "?"})`,
        );
        label.style.display = "flex";
        label.style.flexDirection = "row";
        label.style.justifyContent = "flex-start";
        label.style.alignItems = "center";
        return label;
      });
    const form = el(
      "form",
      { class: "firmware-start" },
      input("name", "Name", { required: true, maxlength: "100" }),
      input("location", "Firmware URL", { type: "url", required: true, maxlength: "512" }),
      input("version", "Target version (optional)", { maxlength: "100" }),
      el(
        "label",
        {},
        "Signing certificate (PEM, for a signed firmware)",
        el("textarea", { name: "signing_certificate", rows: "3", maxlength: "5500" }),
      ),
      input("signature", "Signature (base64, for a signed firmware)", { maxlength: "800" }),
      input("batch_size", "Stations at a time", {
        type: "number",
        min: "1",
        max: "100",
        value: String(defaults.batch_size),
      }),
      input("timeout_minutes", "Minutes to come back", {
        type: "number",
        min: "1",
        max: "10080",
        value: String(defaults.timeout_minutes),
      }),
      el("label", {}, "Stations", choice),
      el("fieldset", {}, el("legend", { text: "Chosen stations" }), boxes.length ? boxes : el("p", { class: "muted", text: "No station can update its firmware." })),
      el("button", { type: "submit", class: "primary", text: "Start campaign" }),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.start(form);
    });
    this.parts.start.body.replaceChildren(form);
  }

  async start(form) {
    const values = new FormData(form);
    const data = {
      name: String(values.get("name") || "").trim(),
      location: String(values.get("location") || "").trim(),
      batch_size: Number(values.get("batch_size") || 2),
      timeout_minutes: Number(values.get("timeout_minutes") || 30),
    };
    const version = String(values.get("version") || "").trim();
    if (version) data.version = version;
    const certificate = String(values.get("signing_certificate") || "").trim();
    const signature = String(values.get("signature") || "").trim();
    if (certificate) data.signing_certificate = `${certificate}\n`;
    if (signature) data.signature = signature;
    const target = String(values.get("target") || "");
    if (target) {
      const [vendor, model] = JSON.parse(target);
      data.vendor = vendor;
      if (model) data.model = model;
    } else {
      data.stations = values.getAll("station").map(String);
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    let started = false;
    try {
      const campaign = await this.call("start_campaign", data);
      this.say(`Campaign ${campaign.name} started`);
      started = true;
    } catch (err) {
      this.say(errorText(err), true);
    } finally {
      button.disabled = false;
    }
    await this.load();
    // A fresh form, with the stations as they are now.
    if (started && this.parts.start && this.inventory) this.showStart();
  }
}

if (!customElements.get("firmware-panel")) {
  customElements.define("firmware-panel", FirmwarePanel);
}
