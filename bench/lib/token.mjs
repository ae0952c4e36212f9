/**
 * HS256 tokens for load clients, signed with node:crypto: tens of thousands are needed at start-up
 * and the format is three base64url parts, so no JWT library is worth loading in every generator.
 */
import { createHmac } from 'node:crypto';

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
const TOKEN_TTL_S = 24 * 3600;

/** @param {string} secret @param {string} uid @param {string} [role] */
export function signToken(secret, uid, role = 'viewer') {
  const payload = Buffer.from(JSON.stringify({ sub: uid, role, exp: Math.floor(Date.now() / 1000) + TOKEN_TTL_S })).toString('base64url');
  const signature = createHmac('sha256', secret).update(`${HEADER}.${payload}`).digest('base64url');
  return `${HEADER}.${payload}.${signature}`;
}
