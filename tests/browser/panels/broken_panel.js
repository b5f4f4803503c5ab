// A module that does not parse (tests/browser/test_panels.py).
customElements.define("demo-broken-panel", class extends HTMLElement {
