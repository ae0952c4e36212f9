/**
 * The viewer page (`/` on every gateway): a room's live chat through the Roomcast SDK, as any
 * third-party client would use it. What the page decides is only how things look; the server decides
 * everything else (limits from `welcome`, refusals as error codes).
 */
import { ClientError, RoomcastClient, type RoomMessage, type WelcomeFrame } from '../../client/roomcast-client.js';
import { ChatList } from '../ui/chat-list.js';
import { byId, setStatus } from '../ui/dom.js';
import { messageRow } from '../ui/message-row.js';
import {
  devSignIn, devSignInAvailable, gatewayUrl, keepTokenInFragment, listenToHost, parseDelayMs, readPageParams,
} from '../ui/page-params.js';
import { sendErrorInWords } from '../ui/words.js';

const params = readPageParams();
const room = params.room;
const ui = {
  roomName: byId('room-name'),
  viewers: byId('viewers'),
  state: byId('state'),
  notice: byId('notice'),
  pinned: byId('pinned'),
  pinnedUid: byId('pinned-uid'),
  pinnedText: byId('pinned-text'),
  delay: byId<HTMLInputElement>('delay'),
  signin: byId('signin'),
  signinForm: byId<HTMLFormElement>('signin-form'),
  signinUid: byId<HTMLInputElement>('signin-uid'),
  signinStatus: byId('signin-status'),
  noToken: byId('no-token'),
  chat: byId('chat'),
  scroller: byId('scroller'),
  messages: byId<HTMLOListElement>('messages'),
  pill: byId<HTMLButtonElement>('pill'),
  older: byId<HTMLButtonElement>('older'),
  send: byId<HTMLFormElement>('send'),
  text: byId<HTMLTextAreaElement>('text'),
  counter: byId('counter'),
  sendStatus: byId('send-status'),
};

ui.roomName.textContent = `#${room}`;
document.title = `#${room} · Roomcast chat`;
ui.delay.value = String(params.delayMs / 1000);
if (params.roomProblem) showNotice(params.roomProblem);

let token: string | null = params.token;
let client: RoomcastClient | null = null;
let ownUid: string | null = null;
let maxTextLength = 500;
/** Slow mode's interval as the last notice said (0: off), and when our last message was accepted. */
let slowModeMs = 0;
let lastAcceptedAtMs = 0;
let pendingDelayMs = params.delayMs;

const chat = new ChatList({
  scroller: ui.scroller,
  list: ui.messages,
  pill: ui.pill,
  olderButton: ui.older,
  renderRow: (message) => messageRow(message, { ownUid }),
  loadOlder: (beforeSeq, limit) => client!.history(room, { beforeSeq, limit }),
  onLoadError: (error) => showNotice(`Could not load older messages: ${error instanceof Error ? error.message : String(error)}`),
});

void start();

async function start(): Promise<void> {
  const embedded = listenToHost(room, {
    token: (given) => {
      const first = token === null;
      token = given;
      if (first) connect();
    },
    delay: (delayMs) => applyDelay(delayMs),
  });
  if (token) { connect(); return; }
  if (embedded) { setState('connecting', 'Waiting for the host page…'); return; }
  if (await devSignInAvailable()) {
    ui.signin.hidden = false;
    setState('closed', 'Signed out');
    ui.signinUid.focus();
    ui.signinForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const uid = ui.signinUid.value.trim();
      setStatus(ui.signinStatus, 'Signing in…');
      devSignIn(uid).then((given) => {
        token = given;
        keepTokenInFragment(given);
        ui.signin.hidden = true;
        connect();
      }, (error: unknown) => setStatus(ui.signinStatus, error instanceof Error ? error.message : String(error), 'error'));
    });
    return;
  }
  ui.noToken.hidden = false;
  setState('closed', 'No token');
}

function connect(): void {
  ui.chat.hidden = false;
  ui.send.hidden = false;
  const sdk = new RoomcastClient({ url: gatewayUrl(), token: () => token!, delayMs: pendingDelayMs });
  client = sdk;
  setState('connecting', 'Connecting…');

  let joinedOnce = false;
  sdk.on('connected', (welcome: WelcomeFrame) => {
    ownUid = welcome.uid;
    maxTextLength = welcome.limits.maxTextLength;
    updateCounter();
    // After a reconnect the SDK rejoins by itself, from the last seq it delivered.
    setState('connecting', joinedOnce ? 'Rejoining…' : 'Joining…');
  });
  sdk.on('message', (messageRoom, message: RoomMessage) => {
    if (messageRoom === room) chat.add(message);
  });
  sdk.on('gap', (gapRoom, gap) => { if (gapRoom === room) chat.gap(gap); });
  sdk.on('viewers', (viewersRoom, count) => {
    if (viewersRoom !== room) return;
    ui.viewers.textContent = `${count.toLocaleString('en')} watching`;
    // A join (and each rejoin after a reconnect) reports the count first: the room is live again.
    if (sdk.state === 'open') setState('live', 'Live');
  });
  sdk.on('pinned', (pinnedRoom, message) => { if (pinnedRoom === room) showPinned(message); });
  sdk.on('notice', (notice) => {
    if (notice.room !== undefined && notice.room !== room) return;
    if (notice.code === 'slow_mode') slowModeMs = notice.intervalMs ?? 0;
    showNotice(notice.text);
  });
  sdk.on('left', (leftRoom, reason) => {
    if (leftRoom !== room) return;
    setState('closed', reason === 'banned' ? 'Banned' : 'Not in the room');
    if (reason === 'banned') showNotice('A moderator banned you from this room.');
  });
  sdk.on('error', (error) => {
    if (error.code === 'unauthorized') showNotice(`The token was refused: ${error.message}`);
    else if (error.room === room && error.ref === 'join') showNotice(`Could not rejoin the room: ${error.message}`);
  });
  sdk.on('reconnecting', ({ attempt }) => setState('reconnecting', attempt > 1 ? `Reconnecting… (try ${attempt})` : 'Reconnecting…'));
  sdk.on('disconnected', () => {
    if (sdk.state === 'closed') setState('closed', 'Disconnected');
  });

  sdk.connect().then(() => sdk.join(room)).then(() => {
    joinedOnce = true;
    setState('live', 'Live');
  }, (error: unknown) => {
    const code = error instanceof ClientError ? error.code : 'internal';
    if (code === 'unknown_room' || code === 'banned') {
      setState('closed', code === 'banned' ? 'Banned' : 'No such room');
      showNotice(code === 'banned' ? 'You are banned from this room.' : `There is no room '${room}'.`);
      return;
    }
    setState('closed', 'Disconnected');
    showNotice(error instanceof ClientError && error.code === 'unauthorized' ? 'The token was refused: get a new one.' : `Cannot connect: ${String(error)}`);
  });
}

// ---- sending -------------------------------------------------------------------------------------

ui.text.addEventListener('input', updateCounter);
ui.text.addEventListener('keydown', (event) => {
  // Enter sends, Shift+Enter starts a new line (and IME composition is left alone).
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.send.requestSubmit();
  }
});
ui.send.addEventListener('submit', (event) => {
  event.preventDefault();
  const sdk = client;
  const text = ui.text.value;
  if (!sdk || text.trim() === '') return;
  if (codePoints(text) > maxTextLength) {
    setStatus(ui.sendStatus, `The message is ${codePoints(text) - maxTextLength} characters too long.`, 'error');
    return;
  }
  ui.text.value = '';
  updateCounter();
  setStatus(ui.sendStatus, sdk.state === 'open' ? 'Sending…' : 'Will send when reconnected…', 'info');
  // The SDK keeps the send across a reconnect and resends it with the same id: never twice in the room.
  sdk.send(room, text).then(() => {
    lastAcceptedAtMs = Date.now();
    setStatus(ui.sendStatus, '');
  }, (error: unknown) => {
    const failure = error instanceof ClientError ? error : new ClientError('internal', String(error));
    // The server says how long slow mode holds this viewer back; a page that saw the interval can tell too.
    const waitMs = failure.retryAfterMs ?? (slowModeMs > 0 ? slowModeMs - (Date.now() - lastAcceptedAtMs) : null);
    setStatus(ui.sendStatus, sendErrorInWords(failure, waitMs), 'error');
    // Give the text back, unless the viewer has typed something new meanwhile.
    if (ui.text.value === '' && failure.code !== 'banned') { ui.text.value = text; updateCounter(); }
  });
});

function updateCounter(): void {
  const used = codePoints(ui.text.value);
  ui.counter.textContent = `${used} / ${maxTextLength}`;
  ui.counter.dataset.over = String(used > maxTextLength);
  ui.counter.setAttribute('aria-label', used > maxTextLength ? `${used - maxTextLength} characters too many` : `${maxTextLength - used} characters left`);
}

/** The server counts Unicode code points, not UTF-16 units. */
function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

// ---- chat in step with the video -----------------------------------------------------------------

ui.delay.addEventListener('change', () => applyDelay(parseDelayMs(String(Number(ui.delay.value) * 1000))));

function applyDelay(delayMs: number): void {
  pendingDelayMs = delayMs;
  ui.delay.value = String(delayMs / 1000);
  client?.setDelay(delayMs);
  const url = new URL(window.location.href);
  if (delayMs > 0) url.searchParams.set('delay', String(delayMs));
  else url.searchParams.delete('delay');
  history.replaceState(null, '', url);
}

// ---- small views ---------------------------------------------------------------------------------

function setState(state: 'connecting' | 'live' | 'reconnecting' | 'closed', text: string): void {
  ui.state.dataset.state = state;
  ui.state.textContent = text;
}

function showNotice(text: string): void {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
}

function showPinned(message: RoomMessage | null): void {
  ui.pinned.hidden = message === null;
  ui.pinnedUid.textContent = message ? message.uid : '';
  ui.pinnedText.textContent = message ? message.text : '';
  if (message) ui.pinned.dataset.seq = String(message.seq);
  else delete ui.pinned.dataset.seq;
}
