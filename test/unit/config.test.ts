import { describe, expect, it } from 'vitest';
import { DEFAULT_BATCH_WINDOW_MS, DEFAULT_REGISTRY_HEARTBEAT_MS, SETTINGS, loadConfig } from '../../src/shared/config.js';
import { ConfigError } from '../../src/shared/errors.js';
import { parseFlags } from '../../src/shared/settings.js';
import { gatewaySettings } from '../../src/gateway/main.js';

const SECRET = 'x'.repeat(32);

describe('loadConfig', () => {
  it('uses named defaults and needs nothing for all-in-one', () => {
    const config = loadConfig('all-in-one', {});
    expect(config.batchWindowMs).toBe(DEFAULT_BATCH_WINDOW_MS);
    expect(config.natsUrl).toBeNull();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('lets flags win over environment variables', () => {
    const config = loadConfig('all-in-one', { ROOMCAST_WS_PORT: '7000' }, ['--ws-port', '7001', '--batch-window-ms=20']);
    expect(config.wsPort).toBe(7001);
    expect(config.batchWindowMs).toBe(20);
  });

  it('reports every problem at once', () => {
    let error: unknown;
    try {
      loadConfig('gateway', { ROOMCAST_WS_PORT: 'eighty', ROOMCAST_BATCH_WINDOW_MS: '0', ROOMCAST_NATS_URL: 'http://x', ROOMCAST_TYPO: '1' }, ['--nope', '1']);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const expected of ['ROOMCAST_WS_PORT', 'ROOMCAST_BATCH_WINDOW_MS', 'ROOMCAST_NATS_URL', 'ROOMCAST_REDIS_URL is required', 'unknown variable ROOMCAST_TYPO', 'unknown flag --nope', 'ROOMCAST_JWT_SECRET']) {
      expect(problems).toContain(expected);
    }
  });

  it('accepts a distributed gateway with NATS, Redis and a secret', () => {
    const config = loadConfig('gateway', { ROOMCAST_NATS_URL: 'nats://a:4222,nats://b:4222', ROOMCAST_REDIS_URL: 'redis://r:6379', ROOMCAST_JWT_SECRET: SECRET });
    expect(config.natsUrl).toBe('nats://a:4222,nats://b:4222');
  });

  it('refuses a short secret and both key kinds at once', () => {
    expect(() => loadConfig('all-in-one', { ROOMCAST_JWT_SECRET: 'short' })).toThrow(/at least 32/);
    expect(() => loadConfig('all-in-one', { ROOMCAST_JWT_SECRET: SECRET, ROOMCAST_JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----' })).toThrow(/only one/);
  });

  it('freezes the whole configuration, lists included', () => {
    const config = loadConfig('all-in-one', { ROOMCAST_API_KEYS: 'a,b' });
    expect(config.apiKeys).toEqual(['a', 'b']);
    expect(Object.isFrozen(config.apiKeys)).toBe(true);
    expect(() => (config.apiKeys as string[]).push('c')).toThrow(TypeError);
  });

  it('reads flags with parseArgs, keeping the old rules: a flag never takes the next flag as its value, every problem listed', () => {
    const known = ['--ws-port', '--batch-window-ms'];
    expect(parseFlags(['--ws-port', '1', '--batch-window-ms=2', '--ws-port', '3'], known)).toEqual({ flags: new Map([['--ws-port', '3'], ['--batch-window-ms', '2']]), problems: [] });
    expect(parseFlags(['--ws-port', '--batch-window-ms', '3'], known)).toEqual({ flags: new Map([['--batch-window-ms', '3']]), problems: ['--ws-port needs a value'] });
    expect(parseFlags(['--typo', '5', 'stray', '-w', '--ws-port'], known).problems).toEqual(["unknown flag --typo", "unexpected argument 'stray'", 'unknown flag -w', '--ws-port needs a value']);
    expect(parseFlags(['--ws-port='], known).flags.get('--ws-port')).toBe('');
    expect(parseFlags(['--dry-run', '--ws-port', '1'], known, ['--dry-run']).flags).toEqual(new Map([['--dry-run', 'true'], ['--ws-port', '1']]));
    expect(parseFlags(['--dry-run=yes'], known, ['--dry-run']).problems).toEqual(['--dry-run takes no value']);
  });

  it('derives one flag per variable', () => {
    const flags = SETTINGS.map((s) => s.flag);
    expect(new Set(flags).size).toBe(flags.length);
    expect(flags).toContain('--nats-url');
  });

  it('gives the gateway its registry heartbeat, for its reports and its shedding alike', () => {
    expect(gatewaySettings(loadConfig('all-in-one', {})).registryHeartbeatMs).toBe(DEFAULT_REGISTRY_HEARTBEAT_MS);
    const settings = gatewaySettings(loadConfig('all-in-one', { ROOMCAST_REGISTRY_HEARTBEAT_MS: '250' }));
    expect([settings.registryHeartbeatMs, settings.shedding.registryHeartbeatMs]).toEqual([250, 250]);
    expect(() => loadConfig('all-in-one', { ROOMCAST_REGISTRY_HEARTBEAT_MS: '0' })).toThrow(/ROOMCAST_REGISTRY_HEARTBEAT_MS/);
  });
});
