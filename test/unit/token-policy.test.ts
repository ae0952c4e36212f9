/** What a token must carry besides its signature: exp, a bounded lifetime, the issuer and audience. */
import { createHmac } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createTokenVerifier, signToken } from '../../src/shared/auth.js';

const SECRET = 'a-secret-for-the-token-policy-tests-32+';
const KEY = new TextEncoder().encode(SECRET);
const nowS = () => Math.floor(Date.now() / 1000);

/** A token with exactly these claims (and `sub`), signed with the test secret. */
function tokenWith(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ role: 'viewer', ...claims }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').sign(KEY);
}

async function refusal(verify: (token: string) => unknown, token: string): Promise<{ code: string; message: string }> {
  const error = await Promise.resolve().then(() => verify(token)).then(() => null, (e: { code: string; message: string }) => e);
  expect(error, 'the token is refused').not.toBeNull();
  return error!;
}

describe('the token policy', () => {
  it('refuses a token without exp by default, and accepts it when exp is not required', async () => {
    const strict = await createTokenVerifier({ secret: SECRET });
    const token = await tokenWith({});
    const error = await refusal(strict, token);
    expect(error.code).toBe('unauthorized');
    expect(error.message).toMatch(/exp/);
    const lenient = await createTokenVerifier({ secret: SECRET }, { requireExp: false });
    expect((await lenient(token)).uid).toBe('alice');
  });

  it('refuses a token that lives longer than the maximum, by exp - iat or, without iat, exp - now', async () => {
    const verify = await createTokenVerifier({ secret: SECRET }, { maxLifetimeS: 3600 });
    expect((await verify(await tokenWith({ iat: nowS(), exp: nowS() + 3600 }))).uid).toBe('alice');
    expect((await refusal(verify, await tokenWith({ iat: nowS(), exp: nowS() + 3601 }))).message).toMatch(/longer than 3600 s/);
    expect((await refusal(verify, await tokenWith({ exp: nowS() + 7200 }))).code).toBe('unauthorized');
    // An old iat with a long exp is a long-lived token even if little of it is left.
    expect((await refusal(verify, await tokenWith({ iat: nowS() - 86_400, exp: nowS() + 60 }))).code).toBe('unauthorized');
  });

  it('checks iss and aud when they are set, and signToken writes them', async () => {
    const verify = await createTokenVerifier({ secret: SECRET }, { issuer: 'https://auth.example', audience: 'roomcast' });
    const good = await signToken({ uid: 'alice', role: 'viewer', ttlSeconds: 60, issuer: 'https://auth.example', audience: 'roomcast' }, { secret: SECRET });
    expect((await verify(good)).uid).toBe('alice');
    const noIssuer = await signToken({ uid: 'alice', role: 'viewer', ttlSeconds: 60, audience: 'roomcast' }, { secret: SECRET });
    expect((await refusal(verify, noIssuer)).message).toMatch(/iss/);
    const otherAudience = await signToken({ uid: 'alice', role: 'viewer', ttlSeconds: 60, issuer: 'https://auth.example', audience: 'other' }, { secret: SECRET });
    expect((await refusal(verify, otherAudience)).message).toMatch(/aud/);
  });
});

describe('HS256 verification', () => {
  it('accepts a good token and refuses a forged, expired, early, malformed or other-algorithm one', async () => {
    const verify = await createTokenVerifier({ secret: SECRET });
    const good = await tokenWith({ exp: nowS() + 60, dev: 'ios' });
    expect(await verify(good)).toEqual({ uid: 'alice', role: 'viewer', device: 'ios' });
    const [header, payload, signature] = good.split('.') as [string, string, string];
    const forgedPayload = Buffer.from(JSON.stringify({ sub: 'mallory', role: 'admin', exp: nowS() + 60 })).toString('base64url');
    expect((await refusal(verify, `${header}.${forgedPayload}.${signature}`)).message).toMatch(/signature/);
    // The second-to-last character carries six bits of the MAC (the last one has padding bits).
    const flipped = `${signature.slice(0, -2)}${signature.at(-2) === 'A' ? 'B' : 'A'}${signature.slice(-1)}`;
    expect((await refusal(verify, `${header}.${payload}.${flipped}`)).code).toBe('unauthorized');
    const otherKey = await new SignJWT({ role: 'viewer' }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('1m')
      .sign(new TextEncoder().encode('another-secret-of-at-least-32-bytes!!'));
    expect((await refusal(verify, otherKey)).message).toMatch(/signature/);
    expect((await refusal(verify, await tokenWith({ exp: nowS() - 1 }))).message).toMatch(/exp/);
    expect((await refusal(verify, await tokenWith({ exp: nowS() + 60, nbf: nowS() + 30 }))).message).toMatch(/nbf/);
    expect((await refusal(verify, await tokenWith({ exp: 'tomorrow' }))).message).toMatch(/exp/);
    const hs512 = await new SignJWT({ role: 'viewer' }).setProtectedHeader({ alg: 'HS512' }).setSubject('alice').setExpirationTime('1m').sign(KEY);
    expect((await refusal(verify, hs512)).message).toMatch(/alg/);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
    expect((await refusal(verify, none)).code).toBe('unauthorized');
    const critHeader = Buffer.from(JSON.stringify({ alg: 'HS256', crit: ['x'], x: 1 })).toString('base64url');
    const critSignature = createHmac('sha256', SECRET).update(`${critHeader}.${payload}`).digest('base64url');
    expect((await refusal(verify, `${critHeader}.${payload}.${critSignature}`)).message).toMatch(/header/);
    for (const junk of ['', 'a.b', 'a.b.c.d', `${header}.${payload}.${signature}=`, `${'x'.repeat(9000)}.${payload}.${signature}`]) {
      expect((await refusal(verify, junk)).code).toBe('unauthorized');
    }
  });

  it('accepts an audience listed among several', async () => {
    const verify = await createTokenVerifier({ secret: SECRET }, { audience: 'roomcast' });
    expect((await verify(await tokenWith({ exp: nowS() + 60, aud: ['other', 'roomcast'] }))).uid).toBe('alice');
    expect((await refusal(verify, await tokenWith({ exp: nowS() + 60, aud: ['other'] }))).message).toMatch(/aud/);
  });
});
