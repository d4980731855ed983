import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

/**
 * The root logger: pino JSON on stderr. Components take `log.child({ component })`, pods
 * `log.child({ pod: "ns/name", podUID })`, so every line says who wrote it.
 */
export function createLogger(options: { level?: LevelWithSilent; name?: string } = {}): Logger {
  const level = options.level ?? (process.env["DECKHAND_LOG_LEVEL"] as LevelWithSilent | undefined) ?? "info";
  return pino({ level, base: { name: options.name ?? "deckhand", pid: process.pid } }, pino.destination(2));
}

/** Kubelet-style `--v` verbosity to a pino level: 0-1 info, 2-3 debug, 4+ trace. */
export function levelForVerbosity(v: number): LevelWithSilent {
  if (v >= 4) return "trace";
  if (v >= 2) return "debug";
  return "info";
}

/** A logger that writes nothing, for unit tests of components that take one. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
