/**
 * The forms of ROOMCAST_REDIS_URL (src/shared/store/redis-url.ts) and the credential settings, as the
 * settings loader checks them at start-up.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { DEFAULT_SENTINEL_PORT, parseRedisUrl, redactRedisUrl } from '../../src/shared/store/redis-url.js';

const BASE = { ROOMCAST_NATS_URL: 'nats://n:4222', ROOMCAST_JWT_SECRET: 'x'.repeat(32) };

describe('parseRedisUrl', () => {
  it.each([
    'redis://127.0.0.1:6379',
    'redis://gateway:secret@redis:6379/2',
    'rediss://:secret@redis.example.com:6380',
  ])('takes %s as one Redis, passed to the client as it is', (url) => {
    expect(parseRedisUrl(url)).toEqual({ target: { kind: 'direct', url } });
  });

  it('takes the Sentinel form: the sentinels, the master name, the nodes\' user and password (decoded) and a database', () => {
    expect(parseRedisUrl('redis-sentinel://room-service:p%40ss@s0:26379,s1,[::1]:26380/roomcast/3')).toEqual({
      target: {
        kind: 'sentinel', masterName: 'roomcast', db: 3, username: 'room-service', password: 'p@ss',
        sentinels: [{ host: 's0', port: 26379 }, { host: 's1', port: DEFAULT_SENTINEL_PORT }, { host: '::1', port: 26380 }],
      },
    });
    expect(parseRedisUrl('redis-sentinel://s0:26379/roomcast')).toEqual({ target: { kind: 'sentinel', masterName: 'roomcast', db: 0, sentinels: [{ host: 's0', port: 26379 }] } });
  });

  it.each([
    ['http://redis:6379', /must start with/],
    ['redis-sentinel://s0:26379', /master/],
    ['redis-sentinel://s0:26379/', /masterName/],
    ['redis-sentinel://s0:notaport/roomcast', /host\[:port\]/],
    ['redis-sentinel://s0:26379/roomcast/x', /database/],
    ['not a url', /valid URL|must start/],
  ])('refuses %s', (url, problem) => {
    const parsed = parseRedisUrl(url);
    expect('problem' in parsed && parsed.problem).toMatch(problem);
  });

  it('hides the password in messages', () => {
    expect(redactRedisUrl('redis-sentinel://gateway:s3cret@s0:26379/roomcast')).toBe('redis-sentinel://gateway:***@s0:26379/roomcast');
    expect(redactRedisUrl('redis://:s3cret@r:6379')).toBe('redis://:***@r:6379');
  });
});

describe('credential settings', () => {
  it('loads the NATS user and password, a Sentinel URL and the sentinels\' password', () => {
    const config = loadConfig('gateway', {
      ...BASE, ROOMCAST_NATS_USER: 'gateway', ROOMCAST_NATS_PASSWORD: 'pw',
      ROOMCAST_REDIS_URL: 'redis-sentinel://gateway:pw@s0:26379,s1:26379/roomcast', ROOMCAST_REDIS_SENTINEL_PASSWORD: 'spw',
    });
    expect(config).toMatchObject({ natsUser: 'gateway', natsPassword: 'pw', redisSentinelPassword: 'spw' });
  });

  it('reports a user without a password, a bad Redis URL and a sentinel password without Sentinel, all at once', () => {
    expect(() => loadConfig('gateway', {
      ...BASE, ROOMCAST_NATS_USER: 'gateway', ROOMCAST_REDIS_URL: 'redis://r:6379', ROOMCAST_REDIS_SENTINEL_PASSWORD: 'spw',
    })).toThrow(/ROOMCAST_NATS_USER and ROOMCAST_NATS_PASSWORD[\s\S]*ROOMCAST_REDIS_SENTINEL_PASSWORD applies only/);
    expect(() => loadConfig('gateway', { ...BASE, ROOMCAST_REDIS_URL: 'redis-sentinel://s0:26379' })).toThrow(/ROOMCAST_REDIS_URL .*master/);
  });
});
