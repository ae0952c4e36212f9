/**
 * Tokens: JWTs signed with HS256 (a shared secret) or RS256 / ES256 (the server holds the public
 * key). The claims: `sub` the uid, `role`, `dev` the device type, `rooms` the rooms a streamer or
 * moderator moderates, `exp`. This is the only file that imports jose.
 */
import { createHmac, createPublicKey, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { SignJWT, importPKCS8, importSPKI, jwtVerify, type JWTPayload } from 'jose';
import { fail } from './errors.js';
import { ROLES, isRoomId, type Role, type RoomId, type Uid } from './protocol/frames.js';

export interface Identity {
  uid: Uid;
  role: Role;
  device: string;
  /** Rooms a streamer or moderator may moderate; absent for viewers and admins. */
  rooms?: readonly RoomId[];
}

export const DEFAULT_DEVICE = 'web';
const UID_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/;
export function isUid(value: unknown): value is Uid {
  return typeof value === 'string' && UID_PATTERN.test(value);
}

const DEVICE_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * Resolves a token's identity, or throws (or rejects with) `unauthorized`. HS256 tokens are checked
 * synchronously, so a gateway can welcome a connection in the same write as its upgrade.
 */
export type TokenVerifier = (token: string) => Identity | Promise<Identity>;

/** What a token must carry besides a valid signature (docs/protocol.md, section 2). */
export interface TokenPolicy {
  /** Refuse tokens without `exp` (default true): a token without one would be valid forever. */
  requireExp?: boolean;
  /** Longest lifetime, `exp` − `iat` (or − now without `iat`), in seconds; 0 or absent: no limit. */
  maxLifetimeS?: number;
  issuer?: string | null;
  audience?: string | null;
}

export async function createTokenVerifier(keys: { secret?: string | null; publicKey?: string | null }, policy: TokenPolicy = {}): Promise<TokenVerifier> {
  let key: KeyObject | CryptoKey;
  let algorithms: string[];
  if (keys.secret) {
    // A key object made once: given the raw bytes, jose imports the key again for every token.
    key = createSecretKey(Buffer.from(keys.secret, 'utf8'));
    algorithms = ['HS256'];
  } else if (keys.publicKey) {
    const algorithm = createPublicKey(keys.publicKey).asymmetricKeyType === 'rsa' ? 'RS256' : 'ES256';
    key = await importSPKI(keys.publicKey, algorithm);
    algorithms = [algorithm];
  } else {
    throw new Error('a token verifier needs a secret or a public key');
  }
  const { requireExp = true, maxLifetimeS = 0, issuer, audience } = policy;
  const checkLifetime = (payload: JWTPayload) => {
    if (maxLifetimeS > 0 && payload.exp !== undefined) {
      const from = typeof payload.iat === 'number' ? payload.iat : Math.floor(Date.now() / 1000);
      if (payload.exp - from > maxLifetimeS) throw fail.unauthorized(`invalid token: it lives longer than ${maxLifetimeS} s (exp - iat)`);
    }
  };
  if (keys.secret) {
    const verifyHs256 = hs256Verifier(key as KeyObject, { requireExp, issuer: issuer ?? null, audience: audience ?? null });
    return (token: string) => {
      const payload = verifyHs256(token);
      checkLifetime(payload);
      return identityFromClaims(payload);
    };
  }
  const options = {
    algorithms,
    ...(requireExp ? { requiredClaims: ['exp'] } : {}),
    ...(issuer ? { issuer } : {}),
    ...(audience ? { audience } : {}),
  };
  return async (token: string) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, options));
    } catch (error) {
      throw fail.unauthorized(`invalid token: ${(error as Error).message}`, { cause: error });
    }
    checkLifetime(payload);
    return identityFromClaims(payload);
  };
}

const JWT_PATTERN = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;
/** Longest token accepted, in characters: a bound on the work a forged one can cause. */
const MAX_TOKEN_LENGTH = 8192;

/**
 * HS256 checked with node:crypto, synchronously: jose verifies through WebCrypto, an async job and
 * a key import per token (~150 µs of CPU each, most of a connection's cost in a connect storm),
 * where an HMAC is ~10 µs. The checks are jose's for a compact JWS with the same options: header
 * `alg` HS256 and no `crit`, the signature compared in constant time, then the claims: exp (required
 * unless `requireExp` is false) in the future, nbf not in the future, iat a number, iss and aud equal
 * to the configured ones. RS256 and ES256 tokens stay with jose.
 */
function hs256Verifier(key: KeyObject, policy: { requireExp: boolean; issuer: string | null; audience: string | null }): (token: string) => JWTPayload {
  const refuse = (reason: string) => fail.unauthorized(`invalid token: ${reason}`);
  return (token) => {
    const parts = token.length <= MAX_TOKEN_LENGTH ? JWT_PATTERN.exec(token) : null;
    if (!parts) throw refuse('Invalid Compact JWS');
    const header = parseSegment(parts[1]!);
    if (!header) throw refuse('Invalid JWS Protected Header');
    if (header.alg !== 'HS256') throw refuse('"alg" (Algorithm) Header Parameter value not allowed');
    if (header.crit !== undefined || header.b64 !== undefined) throw refuse('unsupported JWS header parameter');
    const signature = Buffer.from(parts[3]!, 'base64url');
    const expected = createHmac('sha256', key).update(token.slice(0, parts[1]!.length + 1 + parts[2]!.length)).digest();
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) throw refuse('signature verification failed');
    const payload = parseSegment(parts[2]!) as JWTPayload | null;
    if (!payload) throw refuse('JWT Claims Set must be a top-level JSON object');
    checkClaims(payload, policy, Math.floor(Date.now() / 1000));
    return payload;
  };
}

function parseSegment(segment: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : null;
  } catch {
    return null;
  }
}

function checkClaims(payload: JWTPayload, policy: { requireExp: boolean; issuer: string | null; audience: string | null }, nowS: number): void {
  const refuse = (reason: string) => fail.unauthorized(`invalid token: ${reason}`);
  for (const claim of ['exp', 'nbf', 'iat'] as const) {
    if (payload[claim] !== undefined && typeof payload[claim] !== 'number') throw refuse(`"${claim}" claim must be a number`);
  }
  if (payload.exp === undefined) {
    if (policy.requireExp) throw refuse('missing required "exp" claim');
  } else if (payload.exp <= nowS) {
    throw refuse('"exp" claim timestamp check failed');
  }
  if (payload.nbf !== undefined && payload.nbf > nowS) throw refuse('"nbf" claim timestamp check failed');
  if (policy.issuer !== null && payload.iss !== policy.issuer) throw refuse('unexpected "iss" claim value');
  if (policy.audience !== null) {
    const aud = payload.aud;
    if (!(aud === policy.audience || (Array.isArray(aud) && aud.includes(policy.audience)))) throw refuse('unexpected "aud" claim value');
  }
}

function identityFromClaims(payload: JWTPayload): Identity {
  const { sub, role = 'viewer', dev = DEFAULT_DEVICE, rooms } = payload as JWTPayload & Record<string, unknown>;
  if (!isUid(sub)) throw fail.unauthorized("the token's 'sub' must be a uid");
  if (!(ROLES as readonly unknown[]).includes(role)) throw fail.unauthorized(`the token's 'role' must be one of ${ROLES.join(', ')}`);
  if (typeof dev !== 'string' || !DEVICE_PATTERN.test(dev)) throw fail.unauthorized("the token's 'dev' must be a device type");
  if (rooms !== undefined && !(Array.isArray(rooms) && rooms.every(isRoomId))) throw fail.unauthorized("the token's 'rooms' must be a list of room ids");
  return { uid: sub, role: role as Role, device: dev, ...(rooms === undefined ? {} : { rooms: rooms as RoomId[] }) };
}

export interface TokenRequest {
  uid: Uid;
  role: Role;
  device?: string;
  rooms?: readonly RoomId[];
  ttlSeconds: number;
  issuer?: string;
  audience?: string;
}

/** Signs a token with a secret (HS256) or a PKCS#8 private key (RS256 or ES256). */
export async function signToken(request: TokenRequest, keys: { secret?: string | null; privateKey?: string | null; algorithm?: 'RS256' | 'ES256' }): Promise<string> {
  const claims: Record<string, unknown> = { role: request.role };
  if (request.device) claims.dev = request.device;
  if (request.rooms) claims.rooms = request.rooms;
  const jwt = new SignJWT(claims).setSubject(request.uid).setIssuedAt().setExpirationTime(`${request.ttlSeconds}s`);
  if (request.issuer) jwt.setIssuer(request.issuer);
  if (request.audience) jwt.setAudience(request.audience);
  if (keys.secret) return jwt.setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(keys.secret));
  if (keys.privateKey) {
    const algorithm = keys.algorithm ?? 'ES256';
    return jwt.setProtectedHeader({ alg: algorithm }).sign(await importPKCS8(keys.privateKey, algorithm));
  }
  throw new Error('signing a token needs a secret or a private key');
}

/** May this identity moderate (mute, ban, delete, slow mode) the room? */
export function canModerate(identity: Pick<Identity, 'role' | 'rooms'>, room: RoomId): boolean {
  if (identity.role === 'admin') return true;
  if (identity.role === 'streamer' || identity.role === 'moderator') return identity.rooms?.includes(room) ?? false;
  return false;
}
