import { describe, expect, it } from 'vitest';
import { pickGateway } from '../../src/room-service/gateway-dispatch.js';
import { shedCount } from '../../src/gateway/load-shedding.js';
import type { GatewayInfo } from '../../src/shared/protocol/fleet-messages.js';

const gateway = (gatewayId: string, connections: number, ready = true): GatewayInfo =>
  ({ gatewayId, epoch: 1, url: `ws://${gatewayId}/ws`, connections, ready, expiresAtMs: Number.MAX_SAFE_INTEGER });

/** Every answer over an even spread of random numbers. */
function answers(gateways: GatewayInfo[]): Set<string | undefined> {
  return new Set(Array.from({ length: 100 }, (_, i) => pickGateway(gateways, () => i / 100)?.gatewayId));
}

describe('dispatch', () => {
  it('sends new clients only to the lightly loaded gateways', () => {
    expect(answers([gateway('hot', 40_000), gateway('new', 0), gateway('warm', 38_000)])).toEqual(new Set(['new']));
  });

  it('spreads them over every gateway near the lowest load', () => {
    expect(answers([gateway('a', 10_000), gateway('b', 10_400), gateway('c', 20_000)])).toEqual(new Set(['a', 'b']));
    expect(answers([gateway('a', 5), gateway('b', 90)])).toEqual(new Set(['a', 'b']));
  });

  it('never sends anyone to a gateway that is not ready, and answers null when none is', () => {
    expect(answers([gateway('draining', 0, false), gateway('busy', 30_000)])).toEqual(new Set(['busy']));
    expect(pickGateway([gateway('draining', 0, false)], Math.random)).toBeNull();
    expect(pickGateway([], Math.random)).toBeNull();
  });
});

describe('load shedding', () => {
  it('moves a share of the excess only when this gateway is hot and another is light', () => {
    expect(shedCount('hot', 1000, [gateway('hot', 1000), gateway('new', 0)], 0.5)).toBe(250);
    expect(shedCount('hot', 1000, [gateway('a', 1000), gateway('b', 900)], 0.5)).toBe(0);
    expect(shedCount('light', 10, [gateway('hot', 1000), gateway('light', 10)], 0.5)).toBe(0);
  });

  it('never counts on gateways that are not ready, and 0 turns it off', () => {
    expect(shedCount('hot', 1000, [gateway('draining', 0, false)], 0.5)).toBe(0);
    expect(shedCount('hot', 1000, [gateway('new', 0)], 0)).toBe(0);
  });
});
