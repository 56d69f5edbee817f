// A running standalone source over a temp directory, feeding the real model: what the agent does
// with it, minus the datapath. The frontend table the model computes is what would be programmed.
import type { TestContext } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Service } from '../../../src/model/k8s.ts';
import { ServiceModel } from '../../../src/model/service-model.ts';
import {
  ManifestSource,
  type ManifestChange,
  type ManifestSourceOptions,
} from '../../../src/sources/manifest/source.ts';

export function tempDir(t: TestContext, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ferry-fault-manifest-${prefix}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Running {
  readonly source: ManifestSource;
  readonly model: ServiceModel;
  /** Services as last emitted, by `namespace/name`. */
  readonly services: Map<string, Service>;
  /** Every change emitted, in order. */
  readonly log: ManifestChange[];
  /** Rescans and syncs the model; resolves when the directory's current content is in force. */
  readonly settle: () => Promise<void>;
  readonly close: () => Promise<void>;
}

export async function start(
  t: TestContext,
  dir: string,
  stateDir: string,
  extra: Partial<ManifestSourceOptions> = {},
): Promise<Running> {
  const services = new Map<string, Service>();
  const log: ManifestChange[] = [];
  const model = new ServiceModel({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'] });
  const source = ManifestSource.open(dir, {
    stateDir,
    debounceMs: 20,
    rescanMs: 600_000,
    settleMs: 150,
    ...extra,
    onChange: (c) => {
      log.push(c);
      if (c.kind === 'Service') {
        if (c.current === undefined) services.delete(c.key);
        else services.set(c.key, c.current);
      }
      model.apply(c);
      model.sync();
    },
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await source.close();
  };
  t.after(close);
  await source.initialListDone;
  model.sync();
  return {
    source,
    model,
    services,
    log,
    settle: async () => {
      await source.rescan();
      model.sync();
    },
    close,
  };
}

export const service = (name: string, spec: string): string =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec: ${spec}\n`;

export const docs = (...d: string[]): string => d.join('---\n');

/** Polls until `ready()` (events only: the tests set a rescan interval far beyond their run). */
export async function until(ready: () => boolean, what: string, limitMs = 5000): Promise<void> {
  for (let waited = 0; !ready(); waited += 25) {
    if (waited > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Frontend addresses the model would program, `address:port/protocol (scope)`. */
export function programmed(model: ServiceModel): string[] {
  return [...model.table().frontends.values()]
    .map((f) => `${f.address}:${f.port}/${f.protocol} (${f.scope})`)
    .sort();
}
