/**
 * `prepaid users add|passwd|remove|list`: the dashboard's accounts, in the auth file
 * (src/dashboard/auth/store.ts). Passwords are read from the terminal without echo (asked
 * twice), or as the first line of stdin when it is not a terminal; never from a flag (shell
 * history, `ps`). Whoever can write the auth file manages the accounts: there is no web page for
 * it. Every change is written to the audit log with the operating-system user who made it.
 */
import { userInfo } from "node:os";

import { checkNewPassword, hashPassword } from "../../dashboard/auth/password.js";
import { AuthStore, ROLES, checkAccountName, checkRole, type Role } from "../../dashboard/auth/store.js";
import { PrepaidLedgerError } from "../../errors.js";
import { choice, stringOption } from "../args.js";
import { AUTH_OPTION, authFile } from "../auth-file.js";
import type { Command, Context, Input } from "../command.js";
import { localTime, tableOrNone } from "../format.js";

const ACTIONS = ["add", "passwd", "remove", "list"] as const;

/** One line typed on a terminal in raw mode, echoing nothing; Ctrl-C or Ctrl-D abandons it. */
function readHidden(stdin: Input): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const done = (error?: Error) => {
      stdin.setRawMode?.(false);
      stdin.off("data", onData);
      stdin.pause();
      if (error === undefined) resolve(text);
      else reject(error);
    };
    const onData = (chunk: Buffer | string) => {
      for (const c of chunk.toString()) {
        if (c === "\r" || c === "\n") return done();
        if (c === "\u0003" || c === "\u0004") return done(new PrepaidLedgerError("INVALID_ARGUMENT", "no password given (cancelled)"));
        text = c === "\u007f" || c === "\b" ? text.slice(0, -1) : text + c;
      }
    };
    stdin.setRawMode?.(true);
    stdin.on("data", onData);
    stdin.resume();
  });
}

/** The first line of a stdin that is not a terminal (a pipe or a file). */
function readLine(stdin: Input): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const finish = () => {
      stdin.off("data", onData).off("end", finish).off("error", reject);
      stdin.pause();
      resolve(text.split(/\r?\n/)[0]);
    };
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      if (text.includes("\n") || text.length > 4096) finish();
    };
    stdin.on("data", onData).once("end", finish).once("error", reject);
    stdin.resume();
  });
}

/**
 * A new password: typed twice on a terminal, or the first line of stdin.
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` (no stdin, the two differ, too short or long)
 */
async function newPassword(ctx: Context, name: string): Promise<string> {
  const stdin = ctx.io.stdin;
  if (stdin === undefined) throw new PrepaidLedgerError("INVALID_ARGUMENT", "no stdin to read the password from");
  let password: string;
  if (stdin.isTTY === true) {
    ctx.io.stderr.write(`Password for ${name}: `);
    password = await readHidden(stdin);
    ctx.io.stderr.write("\nAgain: ");
    const again = await readHidden(stdin);
    ctx.io.stderr.write("\n");
    if (again !== password) throw new PrepaidLedgerError("INVALID_ARGUMENT", "the two passwords differ; nothing was changed");
  } else {
    password = await readLine(stdin);
  }
  checkNewPassword(password);
  return password;
}

/** Who made a change, for the audit log: the operating-system user running the command. */
function operator(): string {
  try {
    return userInfo().username;
  } catch {
    return "unknown";
  }
}

async function run(ctx: Context): Promise<number> {
  const [actionText, nameText] = ctx.args.positionals;
  const action = choice(actionText, ACTIONS, "the first argument");
  const { path } = authFile(ctx);
  if (action === "list") {
    if (nameText !== undefined) throw new PrepaidLedgerError("INVALID_ARGUMENT", `unexpected argument "${nameText}"`);
    const store = AuthStore.open(path);
    try {
      const accounts = store.accounts();
      if (ctx.json) await ctx.writeJson({ auth: path, accounts: accounts.map((a) => ({ ...a, created: Math.floor(a.created / 1000), passwordChanged: Math.floor(a.passwordChanged / 1000) })) });
      else await ctx.write(tableOrNone([{ header: "Account" }, { header: "Role" }, { header: "Created" }, { header: "Password changed" }], accounts.map((a) => [a.name, a.role, localTime(a.created / 1000), localTime(a.passwordChanged / 1000)])));
    } finally {
      store.close();
    }
    return 0;
  }
  if (nameText === undefined) throw new PrepaidLedgerError("INVALID_ARGUMENT", `missing <name> (prepaid users ${action} NAME)`);
  const name = checkAccountName(nameText);
  const roleText = stringOption(ctx.args, "role");
  if (action !== "add" && roleText !== undefined) throw new PrepaidLedgerError("INVALID_ARGUMENT", "--role is only for `users add`");
  const role: Role | undefined = action === "add" ? checkRole(roleText ?? "analyst") : undefined;
  // Read the password before touching the file: a cancelled prompt changes nothing.
  const hash = action === "remove" ? undefined : await hashPassword(await newPassword(ctx, name));
  const store = AuthStore.open(path, { create: action === "add" });
  try {
    const now = Date.now();
    const by = `by ${operator()} with prepaid users`;
    if (action === "add") {
      store.addAccount(name, role!, hash!, now);
      store.append({ event: "account-added", account: name, detail: `role ${role} ${by}` }, now);
    } else if (action === "passwd") {
      store.setPassword(name, hash!, now);
      store.append({ event: "password-changed", account: name, detail: `${by}; its sessions ended` }, now);
    } else {
      store.removeAccount(name);
      store.append({ event: "account-removed", account: name, detail: `${by}; its sessions ended` }, now);
    }
  } finally {
    store.close();
  }
  const said = { add: `Added ${name} (${role}) to`, passwd: `Changed the password of ${name} in`, remove: `Removed ${name} from` }[action];
  await (ctx.json ? ctx.writeJson({ action, name, ...(role !== undefined && { role }), auth: path }) : ctx.write(`${said} ${path}.\n`));
  return 0;
}

/** `prepaid users` */
export const usersCommand: Command = {
  name: "users",
  positionals: ["add|passwd|remove|list", "name?"],
  summary: "the dashboard's sign-in accounts: add, change a password, remove, list",
  description: `Manages who may sign in to the dashboard (\`prepaid serve\`), in the auth file, kept apart
from the index. Roles: ${Object.entries(ROLES).map(([r, what]) => `${r} (${what})`).join("; ")}.
The password is typed twice without echo, or read as the first line of stdin when it is not a
terminal; it has at least 12 characters. Changing a password or removing an account ends its
sessions. Once the file holds an account, the dashboard requires sign-in even on 127.0.0.1.
Whoever can write the auth file manages accounts (chmod 600: it is created so). docs/TEAM.md.`,
  options: {
    role: { type: "string", value: "ROLE", help: `users add: ${Object.keys(ROLES).join(" or ")} (default analyst)` },
    auth: AUTH_OPTION,
  },
  examples: [
    "prepaid users add li.wei --role auditor      # asks for the password twice",
    "printf '%s\\n' \"$PASSWORD\" | prepaid users add zhang.min --role analyst",
    "prepaid users list --json",
    "prepaid users remove zhang.min               # also ends her sessions",
  ],
  run,
};
