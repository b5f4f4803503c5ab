// A panel only admins may see (tests/browser/test_panels.py).
customElements.define(
  "demo-admin-panel",
  class extends HTMLElement {
    connectedCallback() {
      this.textContent = "admin panel for " + this.hub.user.username;
    }
  },
);
