// One process `meshlet demo` starts (control plane, sidecar, demo service): spawned from dist/,
// its JSON log lines read for the addresses it bound, its last lines kept to explain a failure.
import { spawn, type ChildProcess } from 'node:child_process';

const KEPT_LINES = 40;

export class DemoChild {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  readonly #listening = new Map<string, string>();
  readonly #exited: Promise<number | null>;
  #waiters: Array<() => void> = [];

  constructor(name: string, command: string, args: string[], env: NodeJS.ProcessEnv) {
    this.name = name;
    // Own process group: a Ctrl-C in the terminal reaches the demo, which then stops its children
    // in order (sidecars deregister first) instead of all of them dying at once.
    this.#child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.#exited = new Promise((resolve) => this.#child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
    this.#child.once('exit', () => this.#wake());
    this.#child.once('error', (e) => {
      this.#keep(`spawn failed: ${e.message}`);
      this.#wake();
    });
    for (const stream of [this.#child.stdout!, this.#child.stderr!]) {
      let partial = '';
      stream.on('data', (chunk: Buffer) => {
        const parts = (partial + chunk.toString('utf8')).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) this.#onLine(line);
      });
    }
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  get exited(): Promise<number | null> {
    return this.#exited;
  }

  /** The last lines it printed, for error messages. */
  tail(n = 15): string {
    return this.#lines.slice(-n).join('\n');
  }

  #keep(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > KEPT_LINES) this.#lines.shift();
  }

  #onLine(line: string): void {
    this.#keep(line);
    // Only "listening" lines matter; the rest is kept as text.
    if (!line.includes('"listening"')) return;
    try {
      const l = JSON.parse(line) as { msg?: string; listener?: string; address?: string };
      if (l.msg === 'listening' && l.listener && l.address) {
        this.#listening.set(l.listener, l.address);
        this.#wake();
      }
    } catch {
      /* not JSON */
    }
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Resolves with the addresses of the named listeners once all are bound; rejects if the process exits or the deadline passes. */
  async listening(listeners: string[], timeoutMs: number): Promise<Record<string, string>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (listeners.every((l) => this.#listening.has(l))) return Object.fromEntries(listeners.map((l) => [l, this.#listening.get(l)!]));
      if (!this.running) throw new Error(`${this.name} exited before listening (${listeners.join(', ')}):\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name} did not bind ${listeners.filter((l) => !this.#listening.has(l)).join(', ')} within ${timeoutMs}ms:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs: number): Promise<void> {
    if (this.running && this.#child.pid !== undefined) {
      this.#child.kill('SIGTERM');
      const t = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
      await this.#exited;
      clearTimeout(t);
    }
  }
}
