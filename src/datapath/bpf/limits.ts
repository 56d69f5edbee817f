// Bounds shared by the CLI flags and the installer (the CLI must not load libbpf to check a flag).

/** The largest map size accepted: the kernel rounds a hash map's buckets up to a power of two and
 * refuses more than 2^31 of them, so a larger size could never be created (and 2^32 wraps to 0). */
export const MAX_MAP_SIZE = 2 ** 31;
