/**
 * Asserting the library's typed errors: by code and details, never by message text.
 */
import { expect } from "chai";

import { isError, type PrepaidLedgerError } from "../../src/errors.js";

/** Awaits `p`, expects it to reject with a PrepaidLedgerError of `code`, and returns the error. */
export async function expectRejects(p: Promise<unknown>, code: string): Promise<PrepaidLedgerError> {
  try {
    await p;
  } catch (e) {
    expect(isError(e), String(e)).to.equal(true);
    expect((e as PrepaidLedgerError).code, String(e)).to.equal(code);
    return e as PrepaidLedgerError;
  }
  expect.fail(`expected ${code}`);
}
