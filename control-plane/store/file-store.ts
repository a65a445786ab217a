// The embedded default store: one file per config version in <data-dir>/config/, each written
// atomically and durably (write a temp file, fsync it, rename, fsync the directory) before the write
// is acknowledged; then the CURRENT pointer is renamed into place (advisory, for humans and tools).
// A kill -9 at any moment leaves every acknowledged version complete: on open, temp files are
// removed and the highest complete version is current, whatever CURRENT says. The instance
// registry lives in memory (sidecars re-register on reconnect).
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../../core/clock.js';
import { meshError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/log.js';
import { canonicalJson } from '../../core/snapshot.js';
import { InstanceRegistry } from './instance-registry.js';
import type { ConfigVersion, ConfigWrite, InstanceRecord, InstanceRegistration, Store, StoreEvent } from './store.js';

export interface FileStoreOptions {
  /** The control plane's data dir; versions go to <dir>/config/. */
  dir: string;
  /** Versions kept (default 50); older ones are deleted after each write. */
  historyLimit?: number;
  clock?: Clock;
  wallClock?: () => Date;
  log?: Logger;
}

const VERSION_FILE = /^v(\d{10})\.json$/;
const TMP_PREFIX = '.tmp-';
const versionFile = (v: number): string => `v${String(v).padStart(10, '0')}.json`;

/** Writes `data` to dir/name so that after a crash the file is either absent/old or complete, and durable once resolved. */
export async function writeFileDurably(dir: string, name: string, data: string): Promise<void> {
  await writeFileAtomically(dir, name, data, true);
  await syncDir(dir);
}

/** Temp file + rename: readers (and a crash) see the old or the new content, never part of one. */
async function writeFileAtomically(dir: string, name: string, data: string, sync = false): Promise<void> {
  const tmp = path.join(dir, `${TMP_PREFIX}${name}-${process.pid}-${randomUUID()}`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data, 'utf8');
    if (sync) await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path.join(dir, name));
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

function checksum(v: Omit<ConfigVersion, never>): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex');
}

export class FileStore implements Store {
  #dir: string;
  #limit: number;
  #log: Logger;
  #wall: () => Date;
  /** Oldest first; mirrors the files on disk. */
  #versions: ConfigVersion[] = [];
  /** Highest version number ever seen on disk, corrupt ones included, so a number is never reused. */
  #highWater = 0;
  #listeners = new Set<(e: StoreEvent) => void>();
  #registry: InstanceRegistry;
  /** Serializes writes so compare-and-set holds within this process. */
  #writeChain: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(opts: FileStoreOptions) {
    this.#dir = path.join(opts.dir, 'config');
    this.#limit = opts.historyLimit ?? 50;
    this.#log = opts.log ?? silentLogger;
    this.#wall = opts.wallClock ?? (() => new Date());
    this.#registry = new InstanceRegistry({ clock: opts.clock, wallClock: opts.wallClock, onChange: () => this.#emit({ kind: 'instances' }) });
  }

  /** Opens (creating if needed) the store in `opts.dir` and loads every complete version. */
  static async open(opts: FileStoreOptions): Promise<FileStore> {
    if (!Number.isInteger(opts.historyLimit ?? 50) || (opts.historyLimit ?? 50) < 1) throw meshError('BAD_REQUEST', `history limit must be a whole number ≥ 1, got ${opts.historyLimit}`);
    const store = new FileStore(opts);
    await store.#load();
    return store;
  }

  async #load(): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    await syncDir(path.dirname(this.#dir));
    const names = await readdir(this.#dir);
    for (const n of names) {
      if (n.startsWith(TMP_PREFIX)) {
        // A write that crashed before its rename: never acknowledged, safe to drop.
        await unlink(path.join(this.#dir, n));
        this.#log.warn({ file: n }, 'removed an unfinished write from a previous run');
      }
    }
    const loaded: ConfigVersion[] = [];
    for (const n of names) {
      const m = VERSION_FILE.exec(n) ?? /^v(\d{10})\.json\.corrupt$/.exec(n);
      if (!m) continue;
      this.#highWater = Math.max(this.#highWater, Number(m[1]));
      if (n.endsWith('.corrupt')) continue;
      const v = await this.#readVersion(n, Number(m[1]));
      if (v) loaded.push(v);
    }
    loaded.sort((a, b) => a.version - b.version);
    this.#versions = loaded;
    const pointer = await readFile(path.join(this.#dir, 'CURRENT'), 'utf8').then(
      (t) => Number(t.trim()),
      () => 0,
    );
    const highest = loaded.at(-1)?.version ?? 0;
    if (pointer !== highest) this.#log.warn({ pointer, highest }, 'CURRENT pointer disagrees with the newest complete version; taking the newest');
    if (pointer !== highest && highest > 0) await writeFileAtomically(this.#dir, 'CURRENT', `${highest}\n`);
    await this.#prune();
  }

  async #readVersion(name: string, expected: number): Promise<ConfigVersion | undefined> {
    try {
      const raw = JSON.parse(await readFile(path.join(this.#dir, name), 'utf8')) as ConfigVersion & { sha256: string };
      const { sha256, ...rest } = raw;
      if (rest.version !== expected || checksum(rest) !== sha256) throw new Error('checksum or version mismatch');
      return Object.freeze(rest);
    } catch (e) {
      // Only possible with disk corruption (writes are atomic); keep the file aside for a human.
      this.#log.error({ file: name, err: (e as Error).message }, 'skipping an unreadable config version');
      await rename(path.join(this.#dir, name), path.join(this.#dir, `${name}.corrupt`)).catch(() => {});
      return undefined;
    }
  }

  async current(): Promise<ConfigVersion | undefined> {
    return this.#versions.at(-1);
  }

  async get(version: number): Promise<ConfigVersion | undefined> {
    return this.#versions.find((v) => v.version === version);
  }

  async history(limit?: number): Promise<ConfigVersion[]> {
    const newestFirst = [...this.#versions].reverse();
    return limit === undefined ? newestFirst : newestFirst.slice(0, Math.max(0, limit));
  }

  put(write: ConfigWrite, expectedVersion?: number): Promise<ConfigVersion> {
    return this.#serialized(() => this.#put(write, expectedVersion));
  }

  rollback(version: number, meta: { author: string; note: string }, expectedVersion?: number): Promise<ConfigVersion> {
    return this.#serialized(async () => {
      const old = this.#versions.find((v) => v.version === version);
      if (!old) {
        const kept = this.#versions.map((v) => v.version);
        throw meshError('NOT_FOUND', `config version ${version} is not in history (kept: ${kept.length ? `${kept[0]}–${kept.at(-1)}` : 'none'})`, { version });
      }
      return this.#put({ config: old.config, text: old.text, author: meta.author, note: meta.note || `rollback to version ${version}`, rollbackOf: version }, expectedVersion);
    });
  }

  async #put(write: ConfigWrite, expectedVersion: number | undefined): Promise<ConfigVersion> {
    if (this.#closed) throw meshError('UNAVAILABLE', 'the store is closed');
    const currentVersion = this.#versions.at(-1)?.version ?? 0;
    if (expectedVersion !== undefined && expectedVersion !== currentVersion) {
      throw meshError('CONFLICT', `expected version ${expectedVersion} but the current version is ${currentVersion}: re-read and retry`, { expectedVersion, currentVersion });
    }
    const next: ConfigVersion = Object.freeze({
      version: Math.max(currentVersion, this.#highWater) + 1,
      config: write.config,
      text: write.text,
      author: write.author,
      note: write.note,
      createdAt: this.#wall().toISOString(),
      ...(write.rollbackOf !== undefined ? { rollbackOf: write.rollbackOf } : {}),
    });
    try {
      await writeFileDurably(this.#dir, versionFile(next.version), JSON.stringify({ ...next, sha256: checksum(next) }));
      // The pointer is advisory (on open the highest complete version wins), so it is renamed into
      // place atomically but not fsynced: that halves the fsyncs on the write path.
      await writeFileAtomically(this.#dir, 'CURRENT', `${next.version}\n`);
    } catch (e) {
      throw meshError('UNAVAILABLE', `could not write config version ${next.version} to ${this.#dir}: ${(e as Error).message}`, undefined, e);
    }
    this.#versions.push(next);
    this.#highWater = next.version;
    await this.#prune();
    this.#emit({ kind: 'config', version: next.version });
    return next;
  }

  async #prune(): Promise<void> {
    while (this.#versions.length > this.#limit) {
      const old = this.#versions.shift()!;
      await unlink(path.join(this.#dir, versionFile(old.version))).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') this.#log.warn({ version: old.version, err: e.message }, 'could not delete an old config version');
      });
    }
  }

  #serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#writeChain.then(fn, fn);
    this.#writeChain = run.catch(() => {});
    return run;
  }

  async instances(): Promise<InstanceRecord[]> {
    return this.#registry.list();
  }

  async register(instance: InstanceRegistration, ttlMs: number): Promise<InstanceRecord> {
    return this.#registry.register(instance, ttlMs);
  }

  async heartbeat(id: string): Promise<InstanceRecord> {
    return this.#registry.heartbeat(id);
  }

  async deregister(id: string): Promise<boolean> {
    return this.#registry.deregister(id);
  }

  subscribe(listener: (e: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#writeChain;
    this.#registry.close();
    this.#listeners.clear();
  }

  #emit(e: StoreEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#log.error({ err }, 'store listener failed');
      }
    }
  }
}
