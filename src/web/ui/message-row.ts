/** One room message as a list row; each kind looks different, and every user-given string is text. */
import type { RoomMessage } from '../../shared/protocol/frames.js';
import { el } from './dom.js';

const BADGES: Readonly<Record<string, string>> = { gift: 'Gift', streamer: 'Streamer', moderator: 'Mod', system: 'System' };

export interface RowOptions {
  /** The viewer's own uid: their messages are marked. */
  ownUid: string | null;
}

export function messageRow(message: RoomMessage, options: RowOptions): HTMLLIElement {
  const { kind } = message;
  const classes = ['msg', `msg--${kind in BADGES ? kind : 'chat'}`];
  if (options.ownUid !== null && message.uid === options.ownUid && kind === 'chat') classes.push('msg--own');
  const badge = BADGES[kind];
  const body = el('span', { class: 'body' }, [
    badge ? el('span', { class: 'badge', text: badge }) : null,
    message.kind === 'system' && message.uid === 'system' ? null : el('span', { class: 'uid', text: message.uid }),
    el('span', { class: 'text', text: message.text }),
    kind === 'gift' ? giftDetail(message.data) : null,
  ]);
  return el('li', { class: classes.join(' '), attrs: { 'data-seq': String(message.seq), 'data-kind': kind } }, [
    el('time', { text: clock(message.ts), attrs: { datetime: new Date(message.ts).toISOString() } }),
    body,
  ]);
}

/** A gift's details from its data (`{gift, count}` by convention; anything else as compact text). */
function giftDetail(data: RoomMessage['data']): HTMLElement | null {
  if (!data || typeof data !== 'object') return null;
  const { gift, count, ...rest } = data as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof gift === 'string' || typeof gift === 'number') parts.push(String(gift));
  if (typeof count === 'number') parts.push(`×${count}`);
  if (Object.keys(rest).length > 0) parts.push(JSON.stringify(rest).slice(0, 200));
  return parts.length > 0 ? el('span', { class: 'detail', text: parts.join(' ') }) : null;
}

function clock(ts: number): string {
  const date = new Date(ts);
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}
