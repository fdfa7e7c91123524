/**
 * Links from the dashboard to a block explorer's page of a transaction, when the regulator has
 * configured one (`prepaid serve --explorer URL-template`, or "explorer" in the config file):
 * the template is an http(s) URL in which `{tx}` stands for the transaction's hash, e.g.
 * `https://etherscan.io/tx/{tx}`. Without one, hashes are shown and not linked: the dashboard
 * never sends the regulator's reader to a site nobody chose.
 */
import { PrepaidLedgerError } from "../errors.js";
import { html, type Html } from "./html.js";

/** A checked template: the URL before and after `{tx}`. */
export interface Explorer {
  template: string;
}

/**
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` unless `template` is an http(s) URL holding `{tx}`
 */
export function parseExplorer(template: string): Explorer {
  let url: URL | undefined;
  try {
    url = new URL(template.replaceAll("{tx}", "0x0"));
  } catch {
    url = undefined;
  }
  if (url === undefined || !/^https?:$/.test(url.protocol) || !template.includes("{tx}")) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "the explorer is an http(s) URL template with {tx} where the transaction hash goes", {
      details: { explorer: template, example: "https://etherscan.io/tx/{tx}" },
    });
  }
  return { template };
}

/** How a page writes a transaction hash (whole, or `short` in a table cell): linked to the explorer's page when one is configured. */
export type TxLink = (txHash: string, short?: boolean) => Html;

/** A hash as text: whole, or its first 10 characters (the whole in the title). */
const hashText = (tx: string, short: boolean) => (short ? html`<code title="${tx}">${tx.slice(0, 10)}…</code>` : html`<code>${tx}</code>`);

/** A {@link TxLink} for the configured explorer (or none: the hash alone, in `<code>`). */
export function explorerLink(explorer: Explorer | null): TxLink {
  if (explorer === null) return (tx, short = false) => hashText(tx, short);
  return (tx, short = false) =>
    html`<a class="explorer" href="${explorer.template.replaceAll("{tx}", encodeURIComponent(tx))}" rel="noopener noreferrer external" title="this transaction on the block explorer">${hashText(tx, short)} ↗</a>`;
}

/** Hashes linked nowhere (no explorer configured). */
export const NO_EXPLORER: TxLink = explorerLink(null);
