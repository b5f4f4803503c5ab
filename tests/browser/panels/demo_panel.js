// A dashboard panel as an integration ships it (tests/browser/test_panels.py registers it):
// it gets `hub` ({ api, user }) before it is connected and calls the API through hub.api.
customElements.define(
  "demo-panel",
  class extends HTMLElement {
    set hub(hub) {
      this._hub = hub;
    }

    get hub() {
      return this._hub;
    }

    connectedCallback() {
      const { api, user } = this._hub;
      this.textContent = "demo panel for " + user.username + " (" + user.role + ")";
      const list = document.createElement("p");
      list.className = "demo-listed";
      list.textContent = "asking the hub…";
      this.append(list);
      api.get("/api/panels").then(
        (panels) => {
          list.textContent = "panels: " + panels.map((p) => p.domain + "/" + p.name).join(", ");
        },
        (err) => {
          list.textContent = "error: " + err.message;
        },
      );
    }
  },
);
