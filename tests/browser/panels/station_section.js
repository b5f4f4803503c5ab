// A station page section as an integration ships it (tests/browser/test_panels.py registers
// it with placement="station"): it gets `hub` and `station` before it is connected.
customElements.define(
  "demo-station-section",
  class extends HTMLElement {
    connectedCallback() {
      const { hub, station } = this;
      this.textContent =
        "section of " + station.name + " (" + station.charge_point_id + ") for " + hub.user.username;
    }
  },
);
