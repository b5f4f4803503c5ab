// The live entity store: the initial states and then the diffs of subscribe_entities.

import type { EntitiesMessage, EntityState, HubConnection } from "./connection.js";

type Listener = (changed: ReadonlySet<string>) => void;

/** Apply one subscribe_entities message to a map of states; return the ids that changed. */
export function applyEntitiesMessage(
  states: Map<string, EntityState>,
  message: EntitiesMessage,
  snapshot = false,
): Set<string> {
  const changed = new Set<string>();
  if (message.a) {
    if (snapshot) {
      for (const id of states.keys()) {
        if (!(id in message.a)) {
          states.delete(id);
          changed.add(id);
        }
      }
    }
    for (const [id, state] of Object.entries(message.a)) {
      states.set(id, { s: state.s, a: state.a ?? {}, lc: state.lc, lu: state.lu ?? state.lc });
      changed.add(id);
    }
  }
  if (message.c) {
    for (const [id, diff] of Object.entries(message.c)) {
      const old = states.get(id);
      if (!old) continue; // a diff for an entity we never saw: the next snapshot brings it
      const next: EntityState = { ...old, a: { ...old.a } };
      const added = diff["+"];
      if (added) {
        if (added.s !== undefined) next.s = added.s;
        if (added.a) Object.assign(next.a, added.a);
        if (added.lc !== undefined) next.lc = added.lc;
        if (added.lu !== undefined) next.lu = added.lu;
        else if (added.lc !== undefined) next.lu = added.lc;
      }
      for (const key of diff["-"]?.a ?? []) delete next.a[key];
      states.set(id, next);
      changed.add(id);
    }
  }
  if (message.r) {
    for (const id of message.r) {
      if (states.delete(id)) changed.add(id);
    }
  }
  return changed;
}

export class EntityStore {
  readonly states = new Map<string, EntityState>();
  private listeners = new Set<Listener>();
  private expectSnapshot = true;
  private unsubscribe: (() => void) | null = null;
  /** True once the first full set of states arrived. */
  ready = false;

  /** Follow every entity over the connection. */
  attach(connection: HubConnection): void {
    this.detach();
    this.unsubscribe = connection.subscribe(
      { type: "subscribe_entities" },
      (event) => this.handle(event as EntitiesMessage),
      () => {
        this.expectSnapshot = true;
      },
    );
  }

  detach(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.states.clear();
    this.ready = false;
  }

  private handle(message: EntitiesMessage): void {
    const snapshot = this.expectSnapshot && message.a !== undefined;
    if (snapshot) this.expectSnapshot = false;
    const changed = applyEntitiesMessage(this.states, message, snapshot);
    if (snapshot) this.ready = true;
    if (changed.size || snapshot) for (const listener of this.listeners) listener(changed);
  }

  get(entityId: string | undefined | null): EntityState | undefined {
    return entityId ? this.states.get(entityId) : undefined;
  }

  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
