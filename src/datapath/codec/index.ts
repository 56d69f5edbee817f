// One codec and map layer for every datapath map and context struct: 16-byte addresses,
// protocol/kind/id scalars, declarative struct layouts, and a typed map over BpfMap.
export * from './address.ts';
export * from './scalars.ts';
export * from './layout.ts';
export * from './map.ts';
