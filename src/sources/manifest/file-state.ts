// One manifest file's contribution, and when a changed file may be read. A file is read once it has
// settled (its mtime settleMs old, or, for a clock-skewed mtime such as NFS gives, the same
// signature seen by this process for settleMs); until then, and while it is invalid YAML,
// unreadable or too large, its last complete version stays in force.
import fs from 'node:fs';
import path from 'node:path';
import { sameSignature, type FileSignature } from './directory.ts';
import { parseManifestFile, type FileParse, type ManifestIssue } from './parse.ts';

export interface FileState {
  readonly signature: FileSignature;
  /** What the merge uses: the last parse that was valid YAML, with the newest issues. */
  readonly effective: FileParse;
}

/** Tracks changed files that have not settled yet, and when this process first saw each version. */
export class SettleClock {
  readonly #settleNs: bigint;
  /** A changed file's signature and when this process first saw it (ns since the epoch). */
  readonly #seen = new Map<string, { readonly signature: FileSignature; readonly sinceNs: bigint }>();

  constructor(settleMs: number) {
    this.#settleNs = BigInt(Math.round(settleMs * 1_000_000));
  }

  /** How long until `file` settles, or undefined when it has (and may be read now). */
  wait(file: string, signature: FileSignature, nowNs: bigint): bigint | undefined {
    const seen = this.#seen.get(file);
    const since = seen && sameSignature(seen.signature, signature) ? seen.sinceNs : nowNs;
    this.#seen.set(file, { signature, sinceNs: since });
    const age = nowNs - signature.mtimeNs;
    const quiet = nowNs - since;
    if (age < this.#settleNs && quiet < this.#settleNs) return this.#settleNs - (age > quiet && age >= 0n ? age : quiet);
    this.#seen.delete(file);
    return undefined;
  }

  /** Forgets every file but those still settling. */
  retain(settling: ReadonlySet<string>): void {
    for (const file of [...this.#seen.keys()]) if (!settling.has(file)) this.#seen.delete(file);
  }
}

/**
 * Reads and parses a settled file: its new state, or undefined when it is gone since the listing.
 * A file too large or unreadable keeps what it contributed before, with the reason as its issue.
 */
export async function loadFile(
  dir: string,
  file: string,
  signature: FileSignature,
  known: FileState | undefined,
  maxBytes: number,
): Promise<FileState | undefined> {
  const keep = (issue: ManifestIssue): FileState => ({
    signature,
    effective: { objects: known?.effective.objects ?? [], kept: known?.effective.kept ?? [], issues: [issue], syntaxError: true },
  });
  if (signature.size > maxBytes) {
    return keep({ file, message: `refused: ${signature.size} bytes is over the limit of ${maxBytes}` });
  }
  let parsed: FileParse;
  try {
    parsed = parseManifestFile(file, await fs.promises.readFile(path.join(dir, file), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // removed or renamed away
    // Unreadable for now (permissions, I/O): like a syntax error, keep what it said before.
    return keep({ file, message: `unreadable: ${(err as Error).message}` });
  }
  return { signature, effective: effectiveParse(parsed, known?.effective) };
}

/**
 * What a file contributes given its new parse and its previous contribution: invalid YAML keeps
 * everything it had; document-level errors keep the previous version of every object the new
 * text no longer yields validly (the name may be the very thing that broke).
 */
export function effectiveParse(parsed: FileParse, previous: FileParse | undefined): FileParse {
  if (parsed.syntaxError) return { ...parsed, objects: previous?.objects ?? [], kept: previous?.kept ?? [] };
  const broken = parsed.issues.some((i) => i.document !== undefined);
  if (!broken || !previous) return parsed;
  const now = new Set(parsed.objects.map((o) => o.identity));
  const keptNow = new Set(parsed.kept.map((k) => k.identity));
  return {
    ...parsed,
    objects: [...parsed.objects, ...previous.objects.filter((o) => !now.has(o.identity))],
    kept: [...parsed.kept, ...previous.kept.filter((k) => !keptNow.has(k.identity))],
  };
}
