import { describe, expect, it } from 'vitest';
import { RoomcastError } from '../../src/shared/errors.js';
import { addsDirectly, checkMayCreateGroup, type GroupPolicy, type GroupPrincipal } from '../../src/room-service/group-policy.js';

const PRINCIPALS: GroupPrincipal[] = ['backend', 'admin', 'streamer', 'moderator', 'viewer'];

function creators(create: GroupPolicy['create']): GroupPrincipal[] {
  return PRINCIPALS.filter((principal) => {
    try {
      checkMayCreateGroup({ create, invites: 'accept' }, principal);
      return true;
    } catch (error) {
      expect(error).toBeInstanceOf(RoomcastError);
      expect((error as RoomcastError).code).toBe('forbidden');
      expect((error as RoomcastError).message).toContain(`ROOMCAST_GROUP_CREATE=${create}`);
      return false;
    }
  });
}

describe('group policy', () => {
  it('ROOMCAST_GROUP_CREATE admits fewer principals at each step; API keys and admins always', () => {
    expect(creators('users')).toEqual(PRINCIPALS);
    expect(creators('staff')).toEqual(['backend', 'admin', 'streamer', 'moderator']);
    expect(creators('backends')).toEqual(['backend', 'admin']);
  });

  it('ROOMCAST_GROUP_INVITES=accept invites what users add; backends and admins add directly under both', () => {
    const accept = PRINCIPALS.filter((principal) => addsDirectly({ create: 'users', invites: 'accept' }, principal));
    expect(accept).toEqual(['backend', 'admin']);
    expect(PRINCIPALS.every((principal) => addsDirectly({ create: 'users', invites: 'direct' }, principal))).toBe(true);
  });
});
