// Service and backend ids: taken once per live object and never reassigned while it lives, so a
// restart that reads the maps back keeps every id (and every open connection's reverse NAT).
import type { BackendValue } from '../lb-codec.ts';
import { addressKey, type LbState } from './state.ts';

export function nextServiceId(state: LbState): number {
  if (!state.serviceIdCursor) for (const id of state.serviceIds.values()) state.serviceIdCursor = Math.max(state.serviceIdCursor, id);
  return ++state.serviceIdCursor;
}

export function nextBackendId(state: LbState): number {
  if (!state.backendIdCursor) for (const id of state.backends.keys()) state.backendIdCursor = Math.max(state.backendIdCursor, id);
  return ++state.backendIdCursor;
}

export function rememberBackend(state: LbState, id: number, value: BackendValue): void {
  state.backendIds.set(addressKey(value.address, value.port, value.protocol), id);
  state.backends.set(id, value);
}

/** Forgets a backend id (its map entry is gone): the address gets a new id if it comes back. */
export function forgetBackend(state: LbState, id: number): void {
  const b = state.backends.get(id);
  if (b) state.backendIds.delete(addressKey(b.address, b.port, b.protocol));
  state.backends.delete(id);
}
