/**
 * The group policy of ROOMCAST_GROUP_CREATE and ROOMCAST_GROUP_INVITES: who may create groups, and
 * whether a user added by another user is a member at once or only once it accepts the invite.
 * Backends (API keys) and admin tokens are trusted: they always create groups and add members directly.
 */
import type { GroupCreatePolicy, GroupInvitePolicy } from '../shared/config.js';
import { fail } from '../shared/errors.js';
import type { Role } from '../shared/protocol/frames.js';

export interface GroupPolicy {
  create: GroupCreatePolicy;
  invites: GroupInvitePolicy;
}

/** Who asks: a backend with an API key, or a token's role. */
export type GroupPrincipal = 'backend' | Role;

const CREATORS: Readonly<Record<GroupCreatePolicy, readonly GroupPrincipal[]>> = {
  users: ['backend', 'admin', 'streamer', 'moderator', 'viewer'],
  staff: ['backend', 'admin', 'streamer', 'moderator'],
  backends: ['backend', 'admin'],
};

const WHO_CREATES: Readonly<Record<GroupCreatePolicy, string>> = {
  users: 'users and backends',
  staff: 'streamers, moderators, admins and backends',
  backends: 'backends and admins',
};

export function checkMayCreateGroup(policy: GroupPolicy, principal: GroupPrincipal): void {
  if (CREATORS[policy.create].includes(principal)) return;
  throw fail.forbidden(`only ${WHO_CREATES[policy.create]} may create groups (ROOMCAST_GROUP_CREATE=${policy.create})`);
}

/** True when users this principal adds become members at once; false when they are invited. */
export function addsDirectly(policy: GroupPolicy, principal: GroupPrincipal): boolean {
  return isTrusted(principal) || policy.invites === 'direct';
}

export function isTrusted(principal: GroupPrincipal): boolean {
  return principal === 'backend' || principal === 'admin';
}
