/**
 * The nftables half of a sync (upstream's nftables syncProxyRules around the rule generation): applies one
 * transaction — full (skeleton, every chain and element) or partial (changed Services' chains, element
 * differences) — and keeps what it left for the next partial sync; then deletes the service chains an earlier
 * sync flushed at least a second ago (upstream deletes them at the start of a sync; after the transaction,
 * the deletion never delays a change's rules).
 * A failed transaction changes nothing (nft transactions are atomic); the caller then asks for a full sync.
 */
import type { Logger } from "../../src-shared/log.ts";
import type { EndpointsMap, ServiceMap } from "../types.ts";
import { NftRunner } from "./nft.ts";
import { emptyNftState, generateNftRules, staleChainsDeletion, type NftOptions, type NftResult, type NftState } from "./rules.ts";
import type { Exec } from "../iptables.ts";

export interface NftSyncInput {
  services: ServiceMap;
  endpoints: EndpointsMap;
  nodeLabels: Readonly<Record<string, string>>;
  options: NftOptions;
  full: boolean;
  changedServices: ReadonlySet<string>;
  signal?: AbortSignal;
}

export interface NftSyncOutcome {
  result: NftResult;
  generateMs: number;
  applyMs: number;
}

export class NftablesSyncer {
  readonly runner: NftRunner;
  private readonly log: Logger;
  private readonly onCleanupFailure: () => void;
  private state: NftState = emptyNftState();
  /** Service chains flushed as stale, by the time (ms, performance.now) they were flushed. */
  private readonly stale = new Map<string, number>();
  private baseChainsRecreated = false;
  private readonly now: () => number;

  constructor(options: { runner?: NftRunner; exec?: Exec; log: Logger; onCleanupFailure?: () => void; now?: () => number }) {
    this.runner = options.runner ?? new NftRunner({ family: "ip", ...(options.exec ? { exec: options.exec } : {}) });
    this.log = options.log;
    this.onCleanupFailure = options.onCleanupFailure ?? (() => undefined);
    this.now = options.now ?? (() => performance.now());
  }

  /** Stale chains waiting for deletion (tests). */
  get staleChains(): ReadonlyMap<string, number> {
    return this.stale;
  }

  /**
   * Deletes the service chains an earlier sync flushed at least a second ago, in a transaction of its own (a
   * failure only counts a cleanup failure; chains that still exist come back as stale at the next full sync).
   * The proxier runs it right after a sync's own transaction, so it never delays the rules of a change.
   */
  async deleteStaleChains(signal?: AbortSignal): Promise<number> {
    if (this.stale.size === 0) return 0;
    const del = staleChainsDeletion(this.runner.family, this.stale, this.now());
    if (del.chains.length === 0) return 0;
    for (const c of del.chains) this.stale.delete(c);
    try {
      await this.runner.run(del.text, signal);
      this.log.debug({ chains: del.chains.length }, "deleted stale nftables chains");
      return del.chains.length;
    } catch (err) {
      this.log.error({ err }, "could not delete stale nftables chains; will retry later");
      this.onCleanupFailure();
      return 0;
    }
  }

  async sync(input: NftSyncInput): Promise<NftSyncOutcome> {
    let existingChains: Set<string> | undefined;
    let existingSets: Set<string> | undefined;
    if (input.full) {
      existingChains = await this.runner.chains(input.signal);
      existingSets = await this.runner.sets(input.signal);
    }
    const g0 = this.now();
    const result = generateNftRules({
      services: input.services,
      endpoints: input.endpoints,
      nodeLabels: input.nodeLabels,
      options: input.options,
      full: input.full,
      recreateBaseChains: input.full && !this.baseChainsRecreated,
      changedServices: input.changedServices,
      previous: this.state,
      ...(existingChains ? { existingChains } : {}),
      ...(existingSets ? { existingSets } : {}),
    });
    const g1 = this.now();
    if (result.text !== "") {
      try {
        await this.runner.run(result.text, input.signal);
      } catch (err) {
        // Nothing was applied; what the stale map says may be wrong now: the next full sync recomputes it.
        this.stale.clear();
        throw err;
      }
    }
    if (input.full) this.baseChainsRecreated = true;
    this.state = result.state;
    for (const c of result.staleChains) if (!this.stale.has(c)) this.stale.set(c, g1);
    for (const c of result.state.chains) this.stale.delete(c);
    return { result, generateMs: g1 - g0, applyMs: this.now() - g1 };
  }

  /** Forget everything known about the table (it was deleted behind our back): the next sync must be full. */
  reset(): void {
    this.state = emptyNftState();
    this.stale.clear();
  }
}
