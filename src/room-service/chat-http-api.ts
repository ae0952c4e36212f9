/**
 * The HTTP endpoints of private and group chat, for backends (API key) and users (token):
 * a backend sends private and group messages on a user's behalf; groups are created and managed by
 * backends (acting as the owner) or by their members within their role, under the group policy (who
 * may create groups; whether users added by a user must accept). Mounted by HttpApi.
 */
import { fail } from '../shared/errors.js';
import { CHAT_CLIENT_MSG_ID_MAX_LENGTH, MAX_UIDS_PER_FRAME, isGroupId, isUidValue, type GroupId } from '../shared/protocol/chat-frames.js';
import type { Uid } from '../shared/protocol/frames.js';
import type { ChatService } from './chat-service.js';
import type { GroupPrincipal } from './group-policy.js';
import { BACKEND_ACTOR, type GroupActor, type GroupService } from './group-service.js';
import type { PathRoute, Principal } from './http-api.js';

const MAX_MEMBER_PAGE = 1000;

export function chatHttpRoutes(chat: ChatService, groups: GroupService): PathRoute[] {
  const route = (method: string, pattern: RegExp, name: string, handle: PathRoute['handle']): PathRoute => ({ method, pattern, name, handle });
  return [
    route('POST', /^\/v1\/private-messages$/, 'private_messages_post', async ({ principal, body }) => {
      requireBackend(principal, 'send private messages for a user');
      const sent = await chat.sendPrivate({ uid: uidOf(body, 'from') }, { to: uidOf(body, 'to'), id: messageIdOf(body), text: textOf(body) });
      return { status: sent.duplicate ? 200 : 201, body: sent };
    }),
    route('PUT', /^\/v1\/groups\/([^/]+)$/, 'group_put', async ({ principal, params, body }) => {
      const group = groupOf(params[0]!);
      const owner = principal.kind === 'backend' ? uidOf(body, 'owner') : principal.identity.uid;
      const members = body.members === undefined ? [] : uidsOf(body, 'members');
      return { status: 201, body: await groups.create(owner, group, members, principalOf(principal)) };
    }),
    route('GET', /^\/v1\/groups\/([^/]+)$/, 'group_get', async ({ principal, params }) => {
      const group = groupOf(params[0]!);
      await groups.members(actorOf(principal), group, undefined, 1);
      return { status: 200, body: await groups.info(group) };
    }),
    route('GET', /^\/v1\/groups\/([^/]+)\/members$/, 'group_members_get', async ({ principal, params, query }) => {
      const { cursor, limit } = pageOf(query);
      return { status: 200, body: await groups.members(actorOf(principal), groupOf(params[0]!), cursor, limit) };
    }),
    route('POST', /^\/v1\/groups\/([^/]+)\/members$/, 'group_members_post', async ({ principal, params, body }) => {
      const role = body.role ?? 'member';
      if (role !== 'admin' && role !== 'member') throw fail.bad_request("'role' must be admin or member");
      return { status: 200, body: await groups.add(actorOf(principal), groupOf(params[0]!), uidsOf(body, 'uids'), role, principalOf(principal)) };
    }),
    route('GET', /^\/v1\/groups\/([^/]+)\/invites$/, 'group_invites_get', async ({ principal, params, query }) => {
      const { cursor, limit } = pageOf(query);
      return { status: 200, body: await groups.groupInvites(actorOf(principal), groupOf(params[0]!), cursor, limit) };
    }),
    route('POST', /^\/v1\/groups\/([^/]+)\/join$/, 'group_join_post', async ({ principal, params, body }) => {
      return { status: 200, body: await groups.join(userOf(principal, body), groupOf(params[0]!)) };
    }),
    route('GET', /^\/v1\/group-invites$/, 'group_invites_of_get', async ({ principal, query }) => {
      const uid = userOf(principal, { uid: query.get('uid') ?? undefined });
      return { status: 200, body: { t: 'group_invites', invites: await groups.invitesOf(uid, pageOf(query).limit) } };
    }),
    route('DELETE', /^\/v1\/groups\/([^/]+)\/members\/([^/]+)$/, 'group_member_delete', async ({ principal, params }) => {
      const uid = params[1]!;
      if (!isUidValue(uid)) throw fail.bad_request('the uid is not valid');
      return { status: 200, body: await groups.remove(actorOf(principal), groupOf(params[0]!), [uid]) };
    }),
    route('POST', /^\/v1\/groups\/([^/]+)\/messages$/, 'group_messages_post', async ({ principal, params, body }) => {
      requireBackend(principal, 'send group messages for a user');
      const sent = await groups.send(uidOf(body, 'from'), groupOf(params[0]!), messageIdOf(body), textOf(body));
      return { status: sent.duplicate ? 200 : 201, body: sent };
    }),
  ];
}

function requireBackend(principal: Principal, what: string): void {
  if (principal.kind === 'backend' || principal.identity.role === 'admin') return;
  throw fail.forbidden(`only backends and admins ${what}`);
}

function actorOf(principal: Principal): GroupActor {
  return principal.kind === 'backend' || principal.identity.role === 'admin' ? BACKEND_ACTOR : principal.identity.uid;
}

function principalOf(principal: Principal): GroupPrincipal {
  return principal.kind === 'backend' ? 'backend' : principal.identity.role;
}

/** The user a request is about: the caller itself, or for backends and admins the body's `uid`. */
function userOf(principal: Principal, body: Record<string, unknown>): Uid {
  return actorOf(principal) === BACKEND_ACTOR ? uidOf(body, 'uid') : (principal as Extract<Principal, { kind: 'user' }>).identity.uid;
}

function pageOf(query: URLSearchParams): { cursor?: string; limit?: number } {
  const limitText = query.get('limit');
  const limit = limitText === null ? undefined : Number(limitText);
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0 && limit <= MAX_MEMBER_PAGE)) {
    throw fail.bad_request(`'limit' must be an integer from 1 to ${MAX_MEMBER_PAGE}`);
  }
  const cursor = query.get('cursor') ?? undefined;
  // A store's cursor: digits, or a scan cursor and a position in its batch ("<digits>:<digits>").
  if (cursor !== undefined && !/^[0-9]{1,20}(:[0-9]{1,10})?$/.test(cursor)) throw fail.bad_request("'cursor' must come from an earlier page");
  return { ...(cursor === undefined ? {} : { cursor }), ...(limit === undefined ? {} : { limit }) };
}

function groupOf(value: string): GroupId {
  if (!isGroupId(value)) throw fail.bad_group();
  return value;
}

function uidOf(body: Record<string, unknown>, field: string): Uid {
  const value = body[field];
  if (!isUidValue(value)) throw fail.bad_request(`'${field}' must be a uid`);
  return value;
}

function uidsOf(body: Record<string, unknown>, field: string): Uid[] {
  const value = body[field];
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_UIDS_PER_FRAME || !value.every(isUidValue)) {
    throw fail.bad_request(`'${field}' must be a list of 1 to ${MAX_UIDS_PER_FRAME} uids`);
  }
  return [...new Set(value as Uid[])];
}

function messageIdOf(body: Record<string, unknown>): string {
  const id = body.id;
  if (typeof id !== 'string' || id.length === 0 || id.length > CHAT_CLIENT_MSG_ID_MAX_LENGTH) {
    throw fail.bad_request(`'id' must be a string of 1 to ${CHAT_CLIENT_MSG_ID_MAX_LENGTH} characters`);
  }
  return id;
}

function textOf(body: Record<string, unknown>): string {
  if (typeof body.text !== 'string') throw fail.bad_request("'text' must be a string");
  return body.text;
}
