import { LitElement } from "lit";

/** A Lit element rendered into the light DOM, so the global stylesheet applies. */
export class LightElement extends LitElement {
  protected override createRenderRoot(): HTMLElement {
    return this;
  }
}
