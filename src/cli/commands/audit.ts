/**
 * `prepaid audit`: the dashboard's audit log (src/dashboard/auth/store.ts), newest first: who
 * signed in, failed to, signed out, and which merchant, card and record each signed-in account
 * viewed. The same log as the dashboard's /audit page (auditors only); here whoever can read the
 * auth file reads it.
 */
import { AuthStore, type AuditEvent, type AuditFilter } from "../../dashboard/auth/store.js";
import { choice, intOption, stringOption } from "../args.js";
import { AUTH_OPTION, authFile } from "../auth-file.js";
import type { Command, Context } from "../command.js";
import { localTime, tableOrNone } from "../format.js";

const EVENTS: readonly AuditEvent[] = [
  "view",
  "signin",
  "signin-failed",
  "signin-limited",
  "signout",
  "session-expired",
  "csrf-refused",
  "account-added",
  "account-removed",
  "password-changed",
];

async function run(ctx: Context): Promise<number> {
  const event = stringOption(ctx.args, "event");
  const filter: AuditFilter = {
    account: stringOption(ctx.args, "account"),
    merchant: intOption(ctx.args, "merchant", 1),
    card: stringOption(ctx.args, "card"),
    event: event === undefined ? undefined : choice(event, EVENTS, "--event"),
    limit: intOption(ctx.args, "limit", 1) ?? 100,
  };
  const store = AuthStore.open(authFile(ctx).path);
  try {
    const rows = store.audit(filter);
    if (ctx.json) {
      await ctx.writeJson({ entries: rows.map((r) => ({ ...r, time: Math.floor(r.time / 1000) })) });
    } else {
      const columns = ["Id", "Time", "Event", "Account", "Client", "Request", "Merchant", "Card", "Record", "Status", "Detail"].map((header) => ({ header }));
      await ctx.write(
        tableOrNone(
          columns,
          rows.map((r) => [r.id, localTime(r.time / 1000), r.event, r.account, r.client, r.path === null ? null : `${r.method} ${r.path}`, r.merchant, r.card, r.record, r.status, r.detail]),
        ),
      );
    }
  } finally {
    store.close();
  }
  return 0;
}

/** `prepaid audit` */
export const auditCommand: Command = {
  name: "audit",
  positionals: [],
  summary: "the dashboard's audit log: sign-ins, failures, sign-outs, who viewed which merchant and card",
  description:
    "Prints the dashboard's audit log from the auth file, newest first: sign-ins and failed ones (with the\nclient address), refused cross-site requests, sign-outs, expired sessions, account changes, and every\npage or API request of a signed-in account with the merchant, card and record it named. docs/TEAM.md.",
  options: {
    account: { type: "string", value: "NAME", help: "only this account's entries" },
    merchant: { type: "string", value: "ID", help: "only requests naming this merchant" },
    card: { type: "string", value: "CARD", help: "only requests naming this card (account id as in the URL)" },
    event: { type: "string", value: "EVENT", help: `only this event: ${EVENTS.join(", ")}` },
    limit: { type: "string", value: "N", help: "at most N entries (default 100)" },
    auth: AUTH_OPTION,
  },
  examples: ["prepaid audit --merchant 7", "prepaid audit --event signin-failed --json", "prepaid audit --account li.wei --limit 20"],
  run,
};
