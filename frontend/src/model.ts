// Live views of stations and ports: REST gives the shape and entity ids, the entity store the
// current values.

import type { Port, Station } from "./api.js";
import { session } from "./session.js";
import { num } from "./ui.js";

function live(entityId: string | undefined): string | undefined {
  return session.entities.get(entityId)?.s;
}

export function portStatus(port: Port): string | null {
  return live(port.entities?.status) ?? port.status;
}

export function portErrorCode(port: Port): string | null {
  const value = live(port.entities?.error_code);
  return value === undefined ? port.error_code : value;
}

export function portPower(port: Port): number | null {
  const value = live(port.entities?.power);
  return value === undefined ? port.power_w : num(value);
}

export function portEnergy(port: Port): number | null {
  const value = live(port.entities?.energy);
  return value === undefined ? port.energy_wh : num(value);
}

export function portSessionEnergy(port: Port): number | null {
  const value = live(port.entities?.session_energy);
  return value === undefined ? port.session_energy_wh : num(value);
}

/** "online", "offline" or "pending" as the live connectivity entity says, else the REST value. */
export function stationConnectivity(station: Station): string {
  const value = live(station.entities?.connectivity);
  if (value !== undefined) return value;
  return station.connectivity ?? (station.online ? "online" : "offline");
}

export function stationOnline(station: Station): boolean {
  return stationConnectivity(station) === "online";
}

export function stationStatus(station: Station): string | null {
  return live(station.entities?.status) ?? station.status;
}

export function stationFirmware(station: Station): string | null {
  return live(station.entities?.firmware) ?? station.firmware;
}

export function stationFaulted(station: Station): boolean {
  return stationStatus(station) === "Faulted" || station.ports.some((p) => portStatus(p) === "Faulted");
}

/** The one word the chargers table and overview count a station under. */
export function stationHealth(station: Station): "faulted" | "online" | "offline" | "pending" {
  const connectivity = stationConnectivity(station);
  if (connectivity === "pending") return "pending";
  if (connectivity !== "online") return "offline";
  return stationFaulted(station) ? "faulted" : "online";
}

/** Every entity id of a station and its ports, for live re-rendering. */
export function stationEntityIds(station: Station): string[] {
  const ids = Object.values(station.entities ?? {});
  for (const port of station.ports) ids.push(...Object.values(port.entities ?? {}));
  return ids;
}

export function hasCapability(station: Station, name: string): boolean {
  return station.capabilities.map((c) => c.toLowerCase()).includes(name);
}
