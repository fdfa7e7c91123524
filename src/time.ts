/**
 * Times as people read them, in this machine's time zone (`TZ` sets it) with the zone written
 * out, so the CLI and the dashboard show one time one way and no reader guesses the zone.
 */

const two = (n: number) => String(n).padStart(2, "0");

/** A Unix time's parts in this machine's time zone: `2026-11-26`, `17:00:00`, `UTC+08:00` (or `UTC`). */
export function localParts(seconds: number): { date: string; time: string; zone: string } {
  const d = new Date(seconds * 1000);
  const offset = -d.getTimezoneOffset();
  const abs = Math.abs(offset);
  return {
    date: `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`,
    time: `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`,
    zone: offset === 0 ? "UTC" : `UTC${offset < 0 ? "-" : "+"}${two(Math.floor(abs / 60))}:${two(abs % 60)}`,
  };
}
