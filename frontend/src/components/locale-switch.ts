// The language switch: a select of the interface's locales; the choice is remembered.

import { html } from "lit";
import { customElement } from "lit/decorators.js";
import { LightElement } from "../base.js";
import { LOCALES, LocaleController, locale, setLocale, t, type Locale } from "../i18n.js";

@customElement("ev-locale-switch")
export class LocaleSwitch extends LightElement {
  constructor() {
    super();
    new LocaleController(this);
  }

  override render() {
    const current = locale();
    return html`<select
      class="locale-switch"
      aria-label=${t("app.language")}
      title=${t("app.language")}
      data-locale=${current}
      @change=${(e: Event) => setLocale((e.target as HTMLSelectElement).value as Locale)}
    >
      ${Object.entries(LOCALES).map(
        ([code, name]) =>
          html`<option value=${code} ?selected=${code === current} lang=${code}>${name}</option>`,
      )}
    </select>`;
  }
}
