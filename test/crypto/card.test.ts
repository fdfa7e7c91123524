/**
 * Holder-bound card ids in the SDK (docs/FORMAT.md 2.4): the derivation against an independent
 * ABI encoding, fresh secrets, and every malformed input refused with INVALID_ARGUMENT naming
 * the field.
 */
import { expect } from "chai";
import { AbiCoder, Wallet, id, keccak256 } from "ethers";

import { cardId, newCardSecret } from "../../src/crypto/card.js";
import { isError } from "../../src/errors.js";

const holder = new Wallet(id("card test holder")).address;
const secret = id("card test secret");

describe("card ids", function () {
  it("derive keccak256(abi.encode(tag, merchantId, holder, secret)), any case of the address", function () {
    const expected = keccak256(
      AbiCoder.defaultAbiCoder().encode(["bytes32", "uint32", "address", "bytes32"], [id("prepaid-ledger.card.v1"), 4_294_967_295, holder, secret]),
    );
    expect(cardId({ merchantId: 4_294_967_295, holder, secret })).to.equal(expected);
    expect(cardId({ merchantId: 4_294_967_295, holder: holder.toLowerCase(), secret })).to.equal(expected);
  });

  it("draws a fresh 32-byte secret each time", function () {
    const [a, b] = [newCardSecret(), newCardSecret()];
    expect(a).to.match(/^0x[0-9a-f]{64}$/);
    expect(a).to.not.equal(b);
  });

  it("refuses a bad merchant id, holder or secret, naming the field", function () {
    const bad: [Parameters<typeof cardId>[0], string][] = [
      [{ merchantId: 0, holder, secret }, "merchantId"],
      [{ merchantId: 2 ** 32, holder, secret }, "merchantId"],
      [{ merchantId: 1.5, holder, secret }, "merchantId"],
      [{ merchantId: 1, holder: "0x1234", secret }, "holder"],
      [{ merchantId: 1, holder: holder.slice(2), secret }, "holder"],
      [{ merchantId: 1, holder, secret: "0x12" }, "secret"],
      [{ merchantId: 1, holder, secret: secret.slice(2) }, "secret"],
    ];
    for (const [input, field] of bad) {
      try {
        cardId(input);
        expect.fail(`accepted ${JSON.stringify(input)}`);
      } catch (e) {
        expect(isError(e, "INVALID_ARGUMENT"), String(e)).to.equal(true);
        expect((e as { details: { field: string } }).details.field).to.equal(field);
      }
    }
  });
});
