// Structured JSON logs (pino) on stdout. Every process logs `{"msg":"listening","listener":…,"address":…}`
// when a listener is bound, which the end-to-end harness waits on.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level = process.env.MESHLET_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that drops everything (unit tests, library use). */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * One line on stderr in the process log's shape, for code that has no logger (a writer losing its
 * lines, a worker gone): it must still be seen, without taking a logger as a dependency.
 */
export function stderrLine(level: 40 | 50, msg: string, fields: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), msg, ...fields })}\n`);
}
