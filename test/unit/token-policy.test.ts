/** What a token must carry besides its signature: exp, a bounded lifetime, the issuer and audience. */
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

async function refusal(verify: (token: string) => Promise<unknown>, token: string): Promise<{ code: string; message: string }> {
  const error = await verify(token).then(() => null, (e: { code: string; message: string }) => e);
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
