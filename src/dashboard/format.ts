/**
 * How the dashboard writes money and time. Every amount on every page goes through {@link yuan},
 * every timestamp through {@link dateTime}, so two pages never show the same figure two ways.
 */
import { yuan } from "../regulator/report.js";
import { localParts } from "../time.js";

export { yuan };

/**
 * Formats a Unix time (seconds) in this machine's time zone, with the zone written out.
 *
 * @param seconds - seconds since 1970-01-01T00:00:00Z, e.g. a block time
 * @returns e.g. `2026-11-26 17:00:00 UTC+08:00`, or `2026-11-26 09:00:00 UTC` under TZ=UTC
 */
export function dateTime(seconds: number): string {
  const { date, time, zone } = localParts(seconds);
  return `${date} ${time} ${zone}`;
}

/**
 * Shortens a long 0x-hex id for a table cell (the full id goes in the cell's title).
 *
 * @returns e.g. `0x1a2b3c…9f8e` for a 32-byte id; short ids unchanged
 */
export function shortHex(hex: string): string {
  return hex.length <= 18 ? hex : `${hex.slice(0, 8)}…${hex.slice(-4)}`;
}
