// The ACME dashboard panel: a custom element the dashboard loads from
// /api/panels/acme/wallboxes.js and gives a `hub` property (its API client and the user).
class AcmeWallboxesPanel extends HTMLElement {
  set hub(hub) {
    this._hub = hub;
    this.render();
  }

  async render() {
    if (!this._hub || !this.isConnected) return;
    const wallboxes = await this._hub.api.get("/api/acme/wallboxes");
    const list = document.createElement("ul");
    for (const [id, box] of Object.entries(wallboxes)) {
      const item = document.createElement("li");
      item.textContent = `${box.name} (${id}): ${box.model}, ${box.max_power_w / 1000} kW`;
      list.append(item);
    }
    const title = document.createElement("h2");
    title.textContent = "ACME wallboxes";
    this.replaceChildren(title, list);
  }

  connectedCallback() {
    this.render();
  }
}

customElements.define("acme-wallboxes-panel", AcmeWallboxesPanel);
