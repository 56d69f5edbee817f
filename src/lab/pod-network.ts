// The one seam between the lab and pod networking. The lab only ever asks "wire this pod" and
// "unwire it". By default the real plugin answers (src/lab/lab-driver.ts: bin/ferry-cni invoked as
// a runtime invokes it); the built-in driver below wires in-process, for tests of the wiring itself.
import { addPodInterface, delPodInterface, hostIfnameFor } from '../cni/wiring.ts';
import { FerryError } from '../common/errors.ts';
import { staticPodAddresses } from './plan.ts';
import type { LabNode } from './types.ts';

export interface PodNetworkRequest {
  /** The pod's network namespace, as a path. */
  readonly netnsPath: string;
  readonly ifname: string;
  readonly containerId: string;
  readonly node: LabNode;
  /** The addresses the lab wants the pod to have (sent as the CNI `ips` capability); when absent
   * the driver allocates. */
  readonly addresses?: PodAddresses;
}

export interface PodAddresses {
  readonly ipv4: string;
  readonly ipv6: string;
}

export interface PodNetworkDriver {
  /** Wires the pod and returns the addresses it got. */
  add(pod: PodNetworkRequest): Promise<PodAddresses>;
  /** Unwires it; idempotent. */
  del(pod: PodNetworkRequest): Promise<void>;
}

/**
 * The lab's own driver: addresses by position (the lowest free 10.244.i.(10+k), k ≥ 1) and the
 * shared wiring library. The slot is taken synchronously, so pods added in order get k = 1, 2 … even
 * when their wiring then runs in parallel.
 */
export class StaticPodNetwork implements PodNetworkDriver {
  readonly #slots = new Map<string, Map<string, number>>(); // node → containerId → k

  async add(pod: PodNetworkRequest): Promise<PodAddresses> {
    const slots = this.#nodeSlots(pod.node.name);
    let k = slots.get(pod.containerId);
    if (k === undefined) {
      const used = new Set(slots.values());
      k = 1;
      while (used.has(k)) k++;
      slots.set(pod.containerId, k);
    }
    const addresses = staticPodAddresses(pod.node.index, k);
    try {
      await addPodInterface({
        netnsPath: pod.netnsPath,
        ifname: pod.ifname,
        hostIfname: hostIfnameFor(pod.containerId, pod.ifname),
        hostNetnsPath: pod.node.netnsPath,
        addresses: [`${addresses.ipv4}/32`, `${addresses.ipv6}/128`],
      });
    } catch (error) {
      slots.delete(pod.containerId);
      throw new FerryError(
        'FERRY_E_LAB',
        `pod ${pod.containerId} on ${pod.node.name}: wiring failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return addresses;
  }

  /** Records a pod wired earlier (by another process) so its slot is not handed out again. */
  adopt(node: string, containerId: string, slot: number): void {
    this.#nodeSlots(node).set(containerId, slot);
  }

  async del(pod: PodNetworkRequest): Promise<void> {
    await delPodInterface({
      hostIfname: hostIfnameFor(pod.containerId, pod.ifname),
      hostNetnsPath: pod.node.netnsPath,
    });
    this.#nodeSlots(pod.node.name).delete(pod.containerId);
  }

  #nodeSlots(node: string): Map<string, number> {
    let slots = this.#slots.get(node);
    if (!slots) this.#slots.set(node, (slots = new Map()));
    return slots;
  }
}
