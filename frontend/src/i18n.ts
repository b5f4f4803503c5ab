// The interface's language: one message catalogue per locale (src/locales/*.ts), t() to look a
// message up with {name} interpolation and plural forms, and Intl formatting for the locale.
//
// The locale comes from the switch in the header (remembered in localStorage), else from the
// browser's preferred languages (navigator.languages), else English. English is the reference
// catalogue: every other catalogue is typed `Catalogue`, so a key missing there fails `tsc`.

import type { ReactiveController, ReactiveControllerHost } from "lit";
import { de } from "./locales/de.js";
import { en, type Catalogue, type Message, type MessageKey, type PluralMessage } from "./locales/en.js";

export type { Catalogue, Message, MessageKey, PluralMessage };

/** The locales the interface speaks, with their names in their own language. */
export const LOCALES = { en: "English", de: "Deutsch" } as const;
export type Locale = keyof typeof LOCALES;

const CATALOGUES: Record<Locale, Catalogue> = { en, de };
const STORAGE_KEY = "evhub.locale";

export type Params = Record<string, string | number | null | undefined>;

function isLocale(value: unknown): value is Locale {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(LOCALES, value);
}

/** The first supported locale among a list of BCP 47 tags ("de-DE" → "de"). */
export function matchLocale(tags: readonly string[]): Locale | null {
  for (const tag of tags) {
    const base = tag.toLowerCase().split(/[-_]/)[0];
    if (isLocale(base)) return base;
  }
  return null;
}

function storedLocale(): Locale | null {
  try {
    const value = localStorage.getItem(STORAGE_KEY);
    return isLocale(value) ? value : null;
  } catch {
    return null; // storage disabled (private mode, policy)
  }
}

function browserLocale(): Locale {
  const tags = navigator.languages?.length ? navigator.languages : [navigator.language ?? "en"];
  return matchLocale(tags) ?? "en";
}

let current: Locale = storedLocale() ?? browserLocale();
let plurals = new Intl.PluralRules(current);
const listeners = new Set<() => void>();

function applyToDocument(): void {
  document.documentElement.lang = current;
}
applyToDocument();

/** The interface's locale now. */
export function locale(): Locale {
  return current;
}

/** Whether the user chose the locale in the switch (rather than the browser's preference). */
export function localeChosen(): boolean {
  return storedLocale() !== null;
}

/** Switch the interface's language and remember the choice; listeners re-render. */
export function setLocale(next: Locale): void {
  if (!isLocale(next)) throw new Error(`unknown locale ${String(next)}`);
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // not remembered, but still switched for this page
  }
  if (next === current) return;
  current = next;
  plurals = new Intl.PluralRules(current);
  applyToDocument();
  for (const listener of listeners) listener();
}

/** Call back when the locale changes; returns the unsubscribe callable. */
export function onLocaleChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Re-render a component when the locale changes (the shell re-creates pages by itself). */
export class LocaleController implements ReactiveController {
  private off: (() => void) | null = null;

  constructor(private readonly host: ReactiveControllerHost) {
    host.addController(this);
  }

  hostConnected(): void {
    this.off = onLocaleChange(() => this.host.requestUpdate());
  }

  hostDisconnected(): void {
    this.off?.();
    this.off = null;
  }
}

function interpolate(text: string, params: Params | undefined): string {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => {
    if (!(name in params)) return whole;
    const value = params[name];
    if (value === null || value === undefined) return "—";
    return typeof value === "number" ? fmtNumber(value) : value;
  });
}

/**
 * The message `key` in the current locale, with {name} placeholders filled from params.
 * A plural message picks its form by params.count with the locale's plural rules.
 */
export function t(key: MessageKey, params?: Params): string {
  // The types make a missing message a build error; the key shows should one slip through.
  const message: Message | undefined = CATALOGUES[current][key] ?? en[key];
  if (message === undefined) return key;
  if (typeof message === "string") return interpolate(message, params);
  const count = Number(params?.count ?? 0);
  const form = count === 0 && message.zero !== undefined ? "zero" : plurals.select(count);
  return interpolate(message[form as keyof PluralMessage] ?? message.other, params);
}

/** Whether the catalogue has a message for a key made at run time (e.g. a status code). */
export function hasMessage(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(en, key);
}

/** The message for a key made at run time, or the fallback when there is none. */
export function tMaybe(key: string, fallback: string, params?: Params): string {
  return hasMessage(key) ? t(key, params) : fallback;
}

// ---- Intl formatting in the current locale ----

/** A number with the locale's separators (max `digits` fraction digits, default 2). */
export function fmtNumber(value: number, digits = 2, minDigits = 0): string {
  return new Intl.NumberFormat(current, {
    maximumFractionDigits: digits,
    minimumFractionDigits: Math.min(minDigits, digits),
  }).format(value);
}

/** A date and time in the locale, optionally in a time zone (the hub's). */
export function fmtDateTime(date: Date, options: Intl.DateTimeFormatOptions, timeZone?: string): string {
  try {
    return new Intl.DateTimeFormat(current, { ...options, timeZone }).format(date);
  } catch {
    return new Intl.DateTimeFormat(current, options).format(date); // a zone this browser lacks
  }
}

/** "3 min ago" and the like, in the locale. */
export function fmtRelative(value: number, unit: Intl.RelativeTimeFormatUnit): string {
  return new Intl.RelativeTimeFormat(current, { numeric: "auto", style: "short" }).format(value, unit);
}
