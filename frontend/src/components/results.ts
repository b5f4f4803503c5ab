// What a charger command's answer means, in words: "Bay 1: reset accepted" rather than the
// service's raw result ({"<device id>": "Accepted"}).

import { t, tMaybe, type MessageKey } from "../i18n.js";

/** The command as the person chose it (the service, and for availability which way). */
export type CommandKind =
  | "reset"
  | "hard_reset"
  | "lock"
  | "unlock"
  | "unlock_connector"
  | "trigger_status"
  | "set_current_limit";

const ACTION_KEYS: Record<CommandKind, MessageKey> = {
  reset: "command.reset",
  hard_reset: "command.hard_reset",
  lock: "command.lock",
  unlock: "command.unlock",
  unlock_connector: "command.unlock_connector",
  trigger_status: "command.trigger_status",
  set_current_limit: "command.set_current_limit",
};

/** The command's name in words ("reset", "current limit 16 A"). */
export function commandLabel(kind: CommandKind, data: Record<string, unknown> = {}): string {
  return t(ACTION_KEYS[kind], { limit: typeof data.limit === "number" ? data.limit : null });
}

/** One target's outcome: "accepted", or for Scheduled what will happen and when. */
export function outcomeText(kind: CommandKind, outcome: unknown): string {
  if (outcome === null || outcome === undefined || outcome === true) return t("outcome.done");
  if (outcome === false) return t("outcome.failed");
  if (typeof outcome !== "string") return JSON.stringify(outcome);
  if (outcome === "Scheduled") {
    const family = kind === "hard_reset" ? "reset" : kind;
    return tMaybe(`outcome.scheduled.${family}`, t("outcome.scheduled.other"));
  }
  return tMaybe(`outcome.${outcome}`, outcome);
}

/**
 * A command's result as sentences, one per target: "Bay 1: reset accepted".
 * name(id) gives a target's name (the station's or the port's); unknown ids keep the id.
 */
export function describeResult(
  kind: CommandKind,
  data: Record<string, unknown>,
  result: unknown,
  name: (id: string) => string | null,
): string {
  const action = commandLabel(kind, data);
  if (result !== null && typeof result === "object" && !Array.isArray(result)) {
    const entries = Object.entries(result as Record<string, unknown>);
    if (entries.length > 0) {
      return entries
        .map(([id, outcome]) => t("result.line", { target: name(id) ?? id, action, outcome: outcomeText(kind, outcome) }))
        .join(" · ");
    }
  }
  return t("result.plain", { action, outcome: outcomeText(kind, result) });
}
