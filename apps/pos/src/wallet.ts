/**
 * The cashier's wallet: any EIP-1193 provider the browser injects (`window.ethereum`), through
 * ethers' BrowserProvider. The wallet signs; the page never holds a key.
 */
import { BrowserProvider, type Eip1193Provider, type JsonRpcSigner } from "ethers";

/** Why the wallet cannot be used, in the cashier's words. */
export class WalletProblem extends Error {
  constructor(
    readonly kind: "missing" | "refused" | "wrong-chain",
    message: string,
  ) {
    super(message);
  }
}

type Injected = Eip1193Provider & { on?: (event: string, listener: (...args: unknown[]) => void) => void };

/** The injected provider, if any. */
export const injectedWallet = (): Injected | undefined => (globalThis as { ethereum?: Injected }).ethereum;

/**
 * Connects to the injected wallet and checks its chain.
 *
 * @throws WalletProblem `missing` (no wallet), `refused` (the cashier declined), `wrong-chain`
 */
export async function connectWallet(chainId: bigint): Promise<{ provider: BrowserProvider; signer: JsonRpcSigner; address: string }> {
  const injected = injectedWallet();
  if (injected === undefined) {
    throw new WalletProblem("missing", "No wallet found. Install or unlock an Ethereum wallet (such as MetaMask) in this browser, then reload.");
  }
  let accounts: string[];
  try {
    accounts = (await injected.request({ method: "eth_requestAccounts" })) as string[];
  } catch {
    throw new WalletProblem("refused", "The wallet did not connect. Approve the connection in your wallet, then reload.");
  }
  if (accounts.length === 0) throw new WalletProblem("refused", "The wallet has no account unlocked. Unlock it, then reload.");
  const on = BigInt((await injected.request({ method: "eth_chainId" })) as string);
  if (on !== chainId) {
    throw new WalletProblem("wrong-chain", `The wallet is on chain ${on}, but this till's ledger is on chain ${chainId}. Switch the wallet's network.`);
  }
  const provider = new BrowserProvider(injected, chainId);
  const signer = await provider.getSigner(accounts[0]);
  return { provider, signer, address: await signer.getAddress() };
}

/** Asks the wallet to switch to `chainId` (EIP-3326). */
export async function switchChain(chainId: bigint): Promise<void> {
  await injectedWallet()?.request({ method: "wallet_switchEthereumChain", params: [{ chainId: "0x" + chainId.toString(16) }] });
}
