/**
 * Tokens: JWTs signed with HS256 (a shared secret) or RS256 / ES256 (the server holds the public
 * key). The claims: `sub` the uid, `role`, `dev` the device type, `rooms` the rooms a streamer or
 * moderator moderates, `exp`. This is the only file that imports jose.
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { SignJWT, importPKCS8, importSPKI, jwtVerify, type JWTPayload } from 'jose';
import { UnauthorizedError } from './errors.js';
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

export type TokenVerifier = (token: string) => Promise<Identity>;

export async function createTokenVerifier(keys: { secret?: string | null; publicKey?: string | null }): Promise<TokenVerifier> {
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
  return async (token: string) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, { algorithms }));
    } catch (error) {
      throw new UnauthorizedError(`invalid token: ${(error as Error).message}`, { cause: error });
    }
    return identityFromClaims(payload);
  };
}

function identityFromClaims(payload: JWTPayload): Identity {
  const { sub, role = 'viewer', dev = DEFAULT_DEVICE, rooms } = payload as JWTPayload & Record<string, unknown>;
  if (!isUid(sub)) throw new UnauthorizedError("the token's 'sub' must be a uid");
  if (!(ROLES as readonly unknown[]).includes(role)) throw new UnauthorizedError(`the token's 'role' must be one of ${ROLES.join(', ')}`);
  if (typeof dev !== 'string' || !DEVICE_PATTERN.test(dev)) throw new UnauthorizedError("the token's 'dev' must be a device type");
  if (rooms !== undefined && !(Array.isArray(rooms) && rooms.every(isRoomId))) throw new UnauthorizedError("the token's 'rooms' must be a list of room ids");
  return { uid: sub, role: role as Role, device: dev, ...(rooms === undefined ? {} : { rooms: rooms as RoomId[] }) };
}

export interface TokenRequest {
  uid: Uid;
  role: Role;
  device?: string;
  rooms?: readonly RoomId[];
  ttlSeconds: number;
}

/** Signs a token with a secret (HS256) or a PKCS#8 private key (RS256 or ES256). */
export async function signToken(request: TokenRequest, keys: { secret?: string | null; privateKey?: string | null; algorithm?: 'RS256' | 'ES256' }): Promise<string> {
  const claims: Record<string, unknown> = { role: request.role };
  if (request.device) claims.dev = request.device;
  if (request.rooms) claims.rooms = request.rooms;
  const jwt = new SignJWT(claims).setSubject(request.uid).setIssuedAt().setExpirationTime(`${request.ttlSeconds}s`);
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
