/**
 * The streamer console (`/console`): the room's live chat with an action on every message (delete,
 * pin, mute, ban), the pinned message with unpin, slow mode, announcements, the mutes and bans in
 * force with undo, and the room's live figures from `room_stats`. All through the SDK. The console
 * shows the controls the token's role and `rooms` claim allow; the server decides every action.
 */
import {
  ClientError, RoomcastClient, type ModerationEntry, type RoomMessage, type RoomStatsFrame, type WelcomeFrame,
} from '../../client/roomcast-client.js';
import { ChatList } from '../ui/chat-list.js';
import { byId, el, setStatus } from '../ui/dom.js';
import { messageRow } from '../ui/message-row.js';
import { gatewayUrl, listenToHost, readPageParams } from '../ui/page-params.js';
import { actionErrorInWords, durationInWords } from '../ui/words.js';

/** How often the console asks its gateway for the room's figures, and re-reads the mute and ban lists. */
const STATS_INTERVAL_MS = 2000;
const LISTS_INTERVAL_MS = 15_000;
/** Kinds a moderator can pin (the server refuses others with bad_request). */
const PINNABLE = new Set(['chat', 'streamer', 'moderator', 'system', 'gift']);

const params = readPageParams();
const room = params.room;
const ui = {
  roomName: byId('room-name'),
  viewers: byId('viewers'),
  who: byId('who'),
  state: byId('state'),
  notice: byId('notice'),
  pinned: byId('pinned'),
  pinnedUid: byId('pinned-uid'),
  pinnedText: byId('pinned-text'),
  unpin: byId<HTMLButtonElement>('unpin'),
  noToken: byId('no-token'),
  chat: byId('chat'),
  scroller: byId('scroller'),
  messages: byId<HTMLOListElement>('messages'),
  pill: byId<HTMLButtonElement>('pill'),
  older: byId<HTMLButtonElement>('older'),
  panel: byId('panel'),
  actionStatus: byId('action-status'),
  announce: byId<HTMLFormElement>('announce'),
  announceText: byId<HTMLTextAreaElement>('announce-text'),
  announceKind: byId<HTMLSelectElement>('announce-kind'),
  duration: byId<HTMLSelectElement>('duration'),
  slowMode: byId<HTMLFormElement>('slow-mode'),
  slowOn: byId<HTMLInputElement>('slow-on'),
  slowSeconds: byId<HTMLInputElement>('slow-seconds'),
  slowState: byId('slow-state'),
  muted: byId<HTMLUListElement>('muted'),
  banned: byId<HTMLUListElement>('banned'),
  byUid: byId<HTMLInputElement>('ban-uid'),
  banByUid: byId<HTMLButtonElement>('ban-by-uid'),
  muteByUid: byId<HTMLButtonElement>('mute-by-uid'),
  mayNot: byId('may-not'),
};
const stat = (id: string) => byId(`stat-${id}`);

ui.roomName.textContent = `#${room} · console`;
document.title = `#${room} · Roomcast console`;

let token: string | null = params.token;
let client: RoomcastClient | null = null;
/** Whether the token may moderate this room, as far as the page can tell; the server checks anyway. */
let mayModerate = false;

const chat = new ChatList({
  scroller: ui.scroller,
  list: ui.messages,
  pill: ui.pill,
  olderButton: ui.older,
  renderRow: (message) => withActions(messageRow(message, { ownUid: client?.welcome?.uid ?? null }), message),
  loadOlder: (beforeSeq, limit) => client!.history(room, { beforeSeq, limit }),
  onLoadError: (error) => say(`Could not load older messages: ${String(error)}`, 'error'),
});

const embedded = listenToHost(room, {
  token: (given) => {
    const first = token === null;
    token = given;
    if (first) connect();
  },
  delay: () => undefined,
});
if (token) connect();
else if (!embedded) { ui.noToken.hidden = false; setState('closed', 'No token'); }

function connect(): void {
  ui.chat.hidden = false;
  ui.panel.hidden = false;
  const sdk = new RoomcastClient({ url: gatewayUrl(), token: () => token! });
  client = sdk;

  sdk.on('connected', (welcome) => {
    showPermissions(welcome);
    setState('connecting', 'Joining…');
  });
  sdk.on('message', (messageRoom, message) => { if (messageRoom === room) chat.add(message); });
  sdk.on('gap', (gapRoom, gap) => { if (gapRoom === room) chat.gap(gap); });
  sdk.on('viewers', (viewersRoom, count) => {
    if (viewersRoom !== room) return;
    ui.viewers.textContent = `${count.toLocaleString('en')} watching`;
    if (sdk.state === 'open') setState('live', 'Live');
  });
  sdk.on('pinned', (pinnedRoom, message) => { if (pinnedRoom === room) showPinned(message); });
  sdk.on('notice', (notice) => {
    if (notice.room !== undefined && notice.room !== room) return;
    if (notice.code === 'slow_mode') showSlowMode(notice.intervalMs ?? 0);
    if (notice.code === 'slow_mode' || notice.code === 'pinned' || notice.code === 'unpinned') return;
    ui.notice.textContent = notice.text;
    ui.notice.hidden = false;
  });
  sdk.on('reconnecting', () => setState('reconnecting', 'Reconnecting…'));
  sdk.on('left', (leftRoom, reason) => { if (leftRoom === room) setState('closed', reason === 'banned' ? 'Banned' : 'Not in the room'); });
  sdk.on('error', (error) => { if (error.code === 'unauthorized') say(`The token was refused: ${error.message}`, 'error'); });

  sdk.connect()
    .then(() => sdk.join(room))
    .then(() => {
      setState('live', 'Live');
      void refreshStats();
      if (mayModerate) void refreshLists();
    })
    .catch((error: unknown) => {
      setState('closed', 'Not connected');
      say(error instanceof ClientError && error.code === 'unauthorized' ? 'The token was refused.' : `Cannot open the room: ${String(error)}`, 'error');
    });
  setInterval(() => { if (sdk.state === 'open') void refreshStats(); }, STATS_INTERVAL_MS);
  setInterval(() => { if (sdk.state === 'open' && mayModerate) void refreshLists(); }, LISTS_INTERVAL_MS);
}

// ---- what the token may do -----------------------------------------------------------------------

/**
 * Shows the controls of the token's role. The role comes from `welcome`; the `rooms` claim only from
 * the token itself, read here without checking its signature: it only hides buttons, the server
 * refuses what the token may not do.
 */
function showPermissions(welcome: WelcomeFrame): void {
  const rooms = roomsClaim(token ?? '');
  const { role } = welcome;
  mayModerate = role === 'admin' || ((role === 'streamer' || role === 'moderator') && rooms.includes(room));
  ui.who.textContent = `${welcome.uid} · ${role}`;
  const kinds = role === 'admin' ? ['system', 'streamer', 'moderator'] : role === 'streamer' ? ['streamer'] : role === 'moderator' ? ['moderator'] : [];
  ui.announceKind.replaceChildren(...kinds.map((kind) => el('option', { text: kind, attrs: { value: kind } })));
  for (const element of document.querySelectorAll<HTMLElement>('[data-needs="moderate"]')) element.hidden = !mayModerate;
  for (const element of document.querySelectorAll<HTMLElement>('[data-needs="announce"]')) element.hidden = kinds.length === 0;
  ui.mayNot.hidden = mayModerate;
  document.body.dataset.mayModerate = String(mayModerate);
}

function roomsClaim(jwt: string): string[] {
  try {
    const payload = JSON.parse(atob((jwt.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/'))) as { rooms?: unknown };
    return Array.isArray(payload.rooms) ? payload.rooms.filter((item): item is string => typeof item === 'string') : [];
  } catch {
    return [];
  }
}

// ---- actions on messages -------------------------------------------------------------------------

function withActions(row: HTMLLIElement, message: RoomMessage): HTMLLIElement {
  if (!mayModerate) return row;
  const buttons: HTMLButtonElement[] = [];
  const button = (label: string, title: string, action: () => Promise<unknown>, done: string) => {
    const element = el('button', { text: label, attrs: { type: 'button', title, 'data-action': label.toLowerCase() } });
    element.addEventListener('click', () => void act(action, done));
    buttons.push(element);
  };
  const sdk = client!;
  if (PINNABLE.has(message.kind)) button('Pin', 'Pin this message for everyone', () => sdk.pin(room, message.seq), 'Pinned.');
  button('Delete', 'Delete this message for everyone', () => sdk.deleteMessage(room, message.seq), 'Deleted.');
  if (message.kind === 'chat' && message.uid !== sdk.welcome?.uid) {
    button('Mute', `Mute ${message.uid}`, () => muteOrBan('mute', message.uid), `${message.uid} is muted.`);
    button('Ban', `Ban ${message.uid} from the room`, () => muteOrBan('ban', message.uid), `${message.uid} is banned.`);
  }
  row.append(el('span', { class: 'actions' }, buttons));
  return row;
}

/** The duration chosen in the panel; undefined: the server's default (a year). */
function chosenDurationMs(): number | undefined {
  return ui.duration.value === '' ? undefined : Number(ui.duration.value);
}

async function muteOrBan(action: 'mute' | 'ban', uid: string): Promise<void> {
  const sdk = client!;
  if (action === 'mute') await sdk.mute(room, uid, chosenDurationMs());
  else await sdk.ban(room, uid, chosenDurationMs());
  void refreshLists();
}

/** Runs an action and says how it went; a refusal is the server's, in words. */
async function act(action: () => Promise<unknown>, done: string): Promise<void> {
  say('Working…');
  try {
    await action();
    say(done);
  } catch (error) {
    const failure = error instanceof ClientError ? error : new ClientError('internal', String(error));
    say(actionErrorInWords(failure), 'error');
  }
}

ui.unpin.addEventListener('click', () => void act(() => client!.unpin(room), 'Unpinned.'));

ui.slowMode.addEventListener('submit', (event) => {
  event.preventDefault();
  const intervalMs = ui.slowOn.checked ? Math.max(1, Math.round(Number(ui.slowSeconds.value) || 0)) * 1000 : 0;
  void act(() => client!.setSlowMode(room, intervalMs), intervalMs > 0 ? `Slow mode: one message every ${durationInWords(intervalMs)}.` : 'Slow mode is off.');
});

ui.announce.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.announceText.value;
  const kind = ui.announceKind.value as 'system' | 'streamer' | 'moderator';
  if (text.trim() === '' || !client) return;
  void act(async () => {
    await client!.send(room, text, { kind });
    ui.announceText.value = '';
  }, 'Published.');
});

for (const [button, action] of [[ui.banByUid, 'ban'], [ui.muteByUid, 'mute']] as const) {
  button.addEventListener('click', () => {
    const uid = ui.byUid.value.trim();
    if (uid === '') return;
    void act(() => muteOrBan(action, uid), `${uid} is ${action === 'ban' ? 'banned' : 'muted'}.`);
  });
}

// ---- lists and figures ---------------------------------------------------------------------------

async function refreshLists(): Promise<void> {
  const sdk = client;
  if (!sdk) return;
  try {
    const lists = await sdk.moderationLists(room);
    showPeople(ui.muted, lists.muted, 'Unmute', (uid) => sdk.unmute(room, uid));
    showPeople(ui.banned, lists.banned, 'Unban', (uid) => sdk.unban(room, uid));
  } catch (error) {
    const failure = error instanceof ClientError ? error : new ClientError('internal', String(error));
    say(`Could not read the mute and ban lists: ${actionErrorInWords(failure)}`, 'error');
  }
}

function showPeople(list: HTMLUListElement, entries: ModerationEntry[], undo: string, action: (uid: string) => Promise<unknown>): void {
  if (entries.length === 0) {
    list.replaceChildren(el('li', { class: 'empty', text: 'nobody' }));
    return;
  }
  list.replaceChildren(...entries.map((entry) => {
    const button = el('button', { text: undo, attrs: { type: 'button', 'data-uid': entry.uid } });
    button.addEventListener('click', () => void act(async () => { await action(entry.uid); await refreshLists(); }, `${undo} done for ${entry.uid}.`));
    return el('li', {}, [
      el('span', {}, [el('span', { class: 'uid', text: entry.uid }), ' ', el('span', { class: 'until', text: untilInWords(entry.untilMs) })]),
      button,
    ]);
  }));
}

function untilInWords(untilMs: number): string {
  const leftMs = untilMs - Date.now();
  return leftMs > 300 * 24 * 3600 * 1000 ? 'for a year' : `${durationInWords(Math.max(0, leftMs))} left`;
}

async function refreshStats(): Promise<void> {
  const sdk = client;
  if (!sdk) return;
  let stats: RoomStatsFrame;
  try {
    stats = await sdk.roomStats(room);
  } catch {
    // Figures are best effort: the next tick asks again; the state badge tells about the connection.
    return;
  }
  stat('viewers').textContent = stats.viewers.toLocaleString('en');
  stat('rate').textContent = stats.msgsPerSec.toFixed(1);
  stat('seq').textContent = String(stats.seq);
  stat('delivered').textContent = stats.delivered.toLocaleString('en');
  stat('sampled').textContent = stats.sampled.toLocaleString('en');
  stat('backpressure').textContent = stats.dropped.backpressure.toLocaleString('en');
  stat('gap').textContent = stats.dropped.gap_unrecoverable.toLocaleString('en');
  stat('duplicate').textContent = stats.dropped.duplicate.toLocaleString('en');
}

// ---- small views ---------------------------------------------------------------------------------

function showPinned(message: RoomMessage | null): void {
  ui.pinned.hidden = message === null;
  ui.pinnedUid.textContent = message ? message.uid : '';
  ui.pinnedText.textContent = message ? message.text : '';
}

function showSlowMode(intervalMs: number): void {
  ui.slowOn.checked = intervalMs > 0;
  if (intervalMs > 0) ui.slowSeconds.value = String(Math.round(intervalMs / 1000));
  ui.slowState.textContent = intervalMs > 0 ? `Slow mode is on: one message every ${durationInWords(intervalMs)}.` : 'Slow mode is off.';
}

function setState(state: 'connecting' | 'live' | 'reconnecting' | 'closed', text: string): void {
  ui.state.dataset.state = state;
  ui.state.textContent = text;
}

function say(text: string, tone: 'error' | 'info' | '' = ''): void {
  setStatus(ui.actionStatus, text, tone);
}
