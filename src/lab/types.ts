// The lab's vocabulary. A lab's whole description is plain data (LabState) written to a JSON file,
// so any process — a test, the CLI, a crashed run's cleanup — can act on a lab it did not create.

export interface LabHostBase {
  /** Short name, unique within the lab: `fab`, `client`, `n1`, `n1-p2`. */
  readonly name: string;
  /** Network namespace name: `<lab>-<name>`. */
  readonly netns: string;
  /** /run/netns/<netns>, the path to enter with nsenter --net=. */
  readonly netnsPath: string;
}

export interface LabFabric extends LabHostBase {
  readonly kind: 'fabric';
  readonly bridge: string;
}

export interface LabClient extends LabHostBase {
  readonly kind: 'client';
  readonly ipv4: string;
  readonly ipv6: string;
  /** cgroup v2 directory its processes run in (so teardown can kill them). */
  readonly cgroup: string;
}

export interface LabNode extends LabHostBase {
  readonly kind: 'node';
  /** 1-based. */
  readonly index: number;
  /** Fabric addresses on eth0 (172.30.0.i, fd00:172:30::i). */
  readonly ipv4: string;
  readonly ipv6: string;
  /** Addresses in the external client's subnet, also on eth0 (198.18.1.i, fd00:198:18::1:i). */
  readonly externalIpv4: string;
  readonly externalIpv6: string;
  readonly podCidrV4: string;
  readonly podCidrV6: string;
  /** The node's cgroup v2 directory: its pods' processes (and its agent's cgroup programs) live here. */
  readonly cgroup: string;
  /**
   * bpffs folder for this node's agent pins (/sys/fs/bpf/<lab>/node-i). Created with the lab when
   * a bpffs is mounted at /sys/fs/bpf; removed with the lab either way.
   */
  readonly pinDir: string;
  /** Scratch directory for this node (agent sockets, CNI state); removed with the lab. */
  readonly runDir: string;
  readonly ifname: string;
}

export interface LabPod extends LabHostBase {
  readonly kind: 'pod';
  /** Name of the node the pod runs on (`n1`). */
  readonly node: string;
  readonly nodeIndex: number;
  /** 1-based within its node. */
  readonly index: number;
  readonly containerId: string;
  /** Interface inside the pod. */
  readonly ifname: string;
  /** Host end of the pod's veth, inside the node's namespace. */
  readonly hostIfname: string;
  readonly ipv4: string;
  readonly ipv6: string;
  /** The node's cgroup, which the pod's processes join. */
  readonly cgroup: string;
}

export type LabHost = LabFabric | LabClient | LabNode | LabPod;

export interface LabState {
  readonly version: 1;
  readonly name: string;
  /** `creating` until bring-up finished; a crashed bring-up leaves it so. */
  readonly status: 'creating' | 'ready';
  readonly createdAt: string;
  readonly ownerPid: number;
  readonly mtu: number;
  /** <cgroup2 mount>/<lab>: parent of every node's cgroup. */
  readonly cgroup: string;
  /** /sys/fs/bpf/<lab>. */
  readonly pinDir: string;
  /** Whether pinDir was created (a bpffs was mounted at bring-up). */
  readonly pinDirCreated: boolean;
  /** /run/ferry-lab/<lab>: scratch space removed with the lab. */
  readonly runDir: string;
  readonly fabric: LabFabric;
  readonly client: LabClient;
  readonly nodes: readonly LabNode[];
  /** Pods that are fully wired. */
  readonly pods: readonly LabPod[];
}
