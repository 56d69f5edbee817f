// The manifest directory as a whole: which files count, and how the objects of many files merge
// into one set. Files are visited in sorted path order so that when two files define the same
// object the winner does not depend on the order the disk or the watcher happened to report them.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { FileParse, KeptObject, ManifestIssue, ParsedObject } from './parse.ts';

const MANIFEST_RE = /\.(ya?ml|json)$/i;

/**
 * Whether a directory entry is a manifest. Hidden entries are skipped: editors' swap and temp
 * files (`.x.yaml.swp`, `.#x.yaml`), and the `..data` / `..2024_…` folders of a mounted ConfigMap,
 * whose files are reachable through the top-level symlinks anyway.
 */
export function isManifestName(name: string): boolean {
  return !name.startsWith('.') && MANIFEST_RE.test(name);
}

export interface FileSignature {
  readonly ino: number;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

export function sameSignature(a: FileSignature, b: FileSignature): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

export interface DirectoryListing {
  /** Manifest files as sorted paths relative to the directory, with their signatures. */
  readonly files: Map<string, FileSignature>;
  /** Every directory walked (the root first), as paths under the root: what the watcher watches. */
  readonly dirs: readonly string[];
  /** Entries that could not be followed (a symlink loop, a dangling link, no permission), by path. */
  readonly problems: readonly ManifestIssue[];
}

/**
 * Manifest files under `dir`, recursively. Symlinks are followed (a mounted ConfigMap is made of
 * them); a directory reached twice (a symlink loop) is walked once, and an entry the kernel refuses
 * to resolve (ELOOP, EACCES …) is reported by path and skipped: one bad entry never hides the rest.
 * A file that vanishes between the listing and the stat is simply not there.
 */
export async function listManifestFiles(dir: string): Promise<DirectoryListing> {
  const found = new Map<string, FileSignature>();
  const dirs: string[] = [];
  const problems: ManifestIssue[] = [];
  const visited = new Set<string>();
  const refuse = (rel: string, err: unknown): void => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // gone since the readdir, or a link to nothing yet
    problems.push({
      file: rel,
      message: `skipped: ${code === 'ELOOP' ? 'symlink loop (ELOOP)' : (err as Error).message}`,
    });
  };
  const walk = async (rel: string): Promise<void> => {
    const abs = path.join(dir, rel);
    let real: string;
    try {
      real = await fs.realpath(abs);
    } catch (err) {
      if (rel === '') throw err; // the directory itself is gone: not the same as "empty"
      return refuse(rel, err);
    }
    if (visited.has(real)) return; // a symlink loop
    visited.add(real);
    let entries: string[];
    try {
      entries = await fs.readdir(abs);
    } catch (err) {
      if (rel === '') throw err;
      return refuse(rel, err);
    }
    dirs.push(rel);
    for (const name of entries.sort()) {
      if (name.startsWith('.')) continue;
      const childRel = rel ? path.join(rel, name) : name;
      let st;
      try {
        st = await fs.stat(path.join(dir, childRel), { bigint: true });
      } catch (err) {
        refuse(childRel, err);
        continue;
      }
      if (st.isDirectory()) await walk(childRel);
      else if (st.isFile() && isManifestName(name))
        found.set(childRel, {
          ino: Number(st.ino),
          size: Number(st.size),
          mtimeNs: st.mtimeNs,
          ctimeNs: st.ctimeNs,
        });
    }
  };
  await walk('');
  const files = new Map([...found].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { files, dirs, problems };
}

export interface DirectoryContents {
  /** identity → the winning definition. */
  readonly objects: ReadonlyMap<string, ParsedObject>;
  readonly kept: readonly KeptObject[];
  readonly issues: readonly ManifestIssue[];
}

/**
 * Merges per-file results (any order) into one set. When two files define one identity, the file
 * that already defined it (in `previous`) keeps it, so a new file never takes over a live object
 * whatever its name; with no such owner the first in path order wins. Both files are named.
 */
export function mergeFiles(
  files: ReadonlyMap<string, FileParse>,
  previous: ReadonlyMap<string, ParsedObject> = new Map(),
): DirectoryContents {
  const objects = new Map<string, ParsedObject>();
  const keptByIdentity = new Map<string, KeptObject>();
  const issues: ManifestIssue[] = [];
  const paths = [...files.keys()].sort();
  const where = (o: { file: string; document: number }): string => `${o.file}#${o.document}`;
  const owners = new Set<string>(); // identities claimed by their previous file
  for (const file of paths)
    for (const o of files.get(file)!.objects)
      if (previous.get(o.identity)?.file === file && !owners.has(o.identity)) {
        owners.add(o.identity);
        objects.set(o.identity, o);
      }
  for (const file of paths) {
    const parsed = files.get(file)!;
    issues.push(...parsed.issues);
    for (const o of parsed.objects) {
      const first = objects.get(o.identity);
      if (first === o) continue;
      if (first) {
        issues.push({
          file: o.file,
          document: o.document,
          object: o.identity,
          message: `duplicate: already defined in ${where(first)}, which is used`,
        });
        continue;
      }
      objects.set(o.identity, o);
    }
    for (const k of parsed.kept) {
      const first = keptByIdentity.get(k.identity);
      if (first) {
        issues.push({
          file: k.file,
          document: k.document,
          object: k.identity,
          message: `duplicate: already defined in ${where(first)}`,
        });
        continue;
      }
      keptByIdentity.set(k.identity, k);
    }
  }
  return { objects, kept: [...keptByIdentity.values()], issues };
}

/** `{ConfigMap: 2, Deployment: 1}` for the status line "kept, not used yet". */
export function countKept(kept: readonly KeptObject[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const k of kept) counts[k.kind] = (counts[k.kind] ?? 0) + 1;
  return counts;
}
