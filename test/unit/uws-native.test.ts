import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { isNativeBinding, loadNativeUws } from '../../src/gateway/uws-server.js';

const require = createRequire(import.meta.url);

describe('the uWebSockets.js binding', () => {
  afterEach(() => { delete process.env.UWS_USE_FALLBACK; });

  it('is the native one on this machine', () => {
    const uws = loadNativeUws();
    expect(isNativeBinding(uws)).toBe(true);
    const loaded = Object.keys(require.cache).filter((path) => path.endsWith('.node') && path.includes('uws_'));
    expect(loaded.length).toBeGreaterThan(0);
  });

  it('tells the package\'s pure-JS fallback apart, so the gateway can refuse it', () => {
    const fallbackPath = require.resolve('uWebSockets.js').replace(/src\/uws\.js$/, 'dist/index.js');
    const fallback = require(fallbackPath);
    expect(isNativeBinding(fallback)).toBe(false);
  });

  it('refuses to start when the fallback is forced', () => {
    process.env.UWS_USE_FALLBACK = '1';
    expect(() => loadNativeUws()).toThrow(/native/);
  });
});
