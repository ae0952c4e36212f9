/** `ROOMCAST_REDIS_URL` for a Redis Cluster: the setting accepts the documented form, and names the seed nodes and credentials. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { ConfigError } from '../../src/shared/errors.js';
import { parseRedisUrl } from '../../src/shared/store/redis-url.js';

describe('redis-cluster:// URLs', () => {
  it('are accepted by the setting, and malformed ones refused', () => {
    const url = 'redis-cluster://10.0.0.1:7000,10.0.0.2:7001';
    expect(loadConfig('all-in-one', { ROOMCAST_REDIS_URL: url }).redisUrl).toBe(url);
    expect(loadConfig('all-in-one', { ROOMCAST_REDIS_URL: 'redis-cluster://app:s3cret@a:7000' }).redisUrl).toBe('redis-cluster://app:s3cret@a:7000');
    for (const bad of ['redis-cluster://a:7000,', 'redis-cluster://a:99999', 'redis-cluster://a:7000/0', 'redis-cluster://a%zz:b@a:7000']) {
      expect(() => loadConfig('all-in-one', { ROOMCAST_REDIS_URL: bad }), bad).toThrow(ConfigError);
    }
  });

  it('name the seed nodes (6379 when no port is given) and the credentials', () => {
    expect(parseRedisUrl('redis-cluster://10.0.0.1:7000,redis-b')).toEqual({ target: { kind: 'cluster', nodes: [{ host: '10.0.0.1', port: 7000 }, { host: 'redis-b', port: 6379 }] } });
    expect(parseRedisUrl('redis-cluster://app:p%40ss@a:7000')).toEqual({ target: { kind: 'cluster', nodes: [{ host: 'a', port: 7000 }], username: 'app', password: 'p@ss' } });
    expect(parseRedisUrl('redis-cluster://:only@a:7000')).toEqual({ target: { kind: 'cluster', nodes: [{ host: 'a', port: 7000 }], password: 'only' } });
  });
});
