/**
 * The live chat list of both pages, built to stay smooth at a hot room's budget (100 messages a
 * second and more):
 * - messages are queued as they arrive and rendered once per animation frame, in one fragment;
 * - the DOM holds at most `maxRows` rows (the newest, while the viewer follows the live edge);
 * - it sticks to the bottom unless the viewer has scrolled up; then new messages only count towards
 *   a "new messages" pill, and returning to the bottom (or the pill) shows the newest rows again;
 * - scrolling to the top (or the "older messages" button) loads older messages through `history`,
 *   keeping the reading position;
 * - a row per seq, never two: a seq already shown is skipped; `retract` removes its target.
 * Rows are made by the caller (`renderRow`), from text only.
 */
import type { Gap, RoomMessage, Seq } from '../../shared/protocol/frames.js';
import { el } from './dom.js';

export const DEFAULT_MAX_ROWS = 200;
/** Within this many pixels of the bottom counts as following the live edge. */
const STICK_SLACK_PX = 40;
/** Within this many pixels of the top starts loading older messages. */
const LOAD_OLDER_PX = 60;
const HISTORY_PAGE = 50;

/** Kinds that change other rows (or the banner) instead of being rows of their own. */
const NOT_ROWS: ReadonlySet<string> = new Set(['retract', 'pin', 'unpin']);

type Item = { kind: 'msg'; message: RoomMessage } | { kind: 'gap'; gap: Gap };

export interface ChatListOptions {
  scroller: HTMLElement;
  list: HTMLOListElement;
  pill: HTMLButtonElement;
  olderButton: HTMLButtonElement;
  renderRow(message: RoomMessage): HTMLLIElement;
  /** A page of history older than `beforeSeq`, oldest first. */
  loadOlder(beforeSeq: Seq, limit: number): Promise<{ msgs: RoomMessage[]; more: boolean }>;
  /** Loading older messages failed (the button stays, to try again). */
  onLoadError(error: unknown): void;
  maxRows?: number;
}

export class ChatList {
  private readonly maxRows: number;
  /** The newest items (at most maxRows): what the list shows when it follows the live edge. */
  private recent: Item[] = [];
  /** Seqs in `recent`, for duplicates. */
  private readonly recentSeqs = new Set<Seq>();
  /** Items that arrived since the last frame. */
  private queue: Item[] = [];
  private frame = 0;
  /** Rows in the DOM by seq. */
  private readonly rows = new Map<Seq, HTMLLIElement>();
  /** The viewer follows the live edge (at the bottom). */
  private stuck = true;
  /** The DOM no longer matches `recent` (the viewer scrolled away, or history pushed the newest out). */
  private stale = false;
  private unseen = 0;
  private loadingOlder = false;
  private moreOlder = true;
  private programmaticScroll = false;

  constructor(private readonly options: ChatListOptions) {
    this.maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
    options.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    options.pill.addEventListener('click', () => this.jumpToNewest());
    options.olderButton.addEventListener('click', () => void this.loadOlder());
  }

  /** A live message (or a catch-up one), in seq order. */
  add(message: RoomMessage): void {
    if (message.kind === 'retract') {
      if (message.target !== undefined) this.remove(message.target);
      return;
    }
    if (NOT_ROWS.has(message.kind) || message.deleted || this.recentSeqs.has(message.seq)) return;
    this.push({ kind: 'msg', message });
  }

  /** Messages `from`..`to` are lost for good: a visible marker where they would have been. */
  gap(gap: Gap): void {
    this.push({ kind: 'gap', gap });
  }

  /** Removes a message (withdrawn by a moderator) wherever it is shown. */
  remove(seq: Seq): void {
    this.rows.get(seq)?.remove();
    this.rows.delete(seq);
    if (this.recentSeqs.delete(seq)) this.recent = this.recent.filter((item) => item.kind !== 'msg' || item.message.seq !== seq);
    this.queue = this.queue.filter((item) => item.kind !== 'msg' || item.message.seq !== seq);
  }

  /** Rows currently in the DOM. */
  get rowCount(): number {
    return this.options.list.childElementCount;
  }

  /** Shows the newest messages and follows the live edge again. */
  jumpToNewest(): void {
    this.stuck = true;
    this.flush();
  }

  private push(item: Item): void {
    if (item.kind === 'msg') this.recentSeqs.add(item.message.seq);
    this.recent.push(item);
    if (this.recent.length > this.maxRows) {
      for (const old of this.recent.splice(0, this.recent.length - this.maxRows)) {
        if (old.kind === 'msg') this.recentSeqs.delete(old.message.seq);
      }
    }
    this.queue.push(item);
    // A hidden tab gets no frames: the queue keeps only what could still be shown.
    if (this.queue.length > this.maxRows) {
      this.queue.splice(0, this.queue.length - this.maxRows);
      this.stale = true;
    }
    if (this.frame === 0) this.frame = requestAnimationFrame(() => this.flush());
  }

  /** Renders what arrived since the last frame, at most once per frame. */
  private flush(): void {
    if (this.frame !== 0) cancelAnimationFrame(this.frame);
    this.frame = 0;
    const items = this.queue;
    this.queue = [];
    if (!this.stuck) {
      this.unseen += items.filter((item) => item.kind === 'msg').length;
      if (items.length > 0) this.stale = true;
      this.showPill();
      return;
    }
    const { list } = this.options;
    if (this.stale) {
      this.stale = false;
      this.rows.clear();
      list.replaceChildren(this.fragmentOf(this.recent));
    } else if (items.length > 0) {
      list.append(this.fragmentOf(items));
      this.trimTop();
    }
    this.unseen = 0;
    this.showPill();
    this.showOlderButton();
    this.scrollToBottom();
  }

  /** The "older messages" button, while history may hold older messages than the first row. */
  private showOlderButton(): void {
    const first = this.firstSeq();
    this.options.olderButton.hidden = !this.moreOlder || (this.rows.size > 0 && first <= 1);
  }

  private firstSeq(): Seq {
    let first = Infinity;
    for (const seq of this.rows.keys()) if (seq < first) first = seq;
    return first;
  }

  private fragmentOf(items: readonly Item[]): DocumentFragment {
    const fragment = document.createDocumentFragment();
    for (const item of items) {
      if (item.kind === 'gap') {
        fragment.append(el('li', { class: 'gap', text: gapText(item.gap), attrs: { role: 'note' } }));
        continue;
      }
      const { seq } = item.message;
      if (this.rows.has(seq)) continue;
      const row = this.options.renderRow(item.message);
      this.rows.set(seq, row);
      fragment.append(row);
    }
    return fragment;
  }

  private trimTop(): void {
    const { list } = this.options;
    let excess = list.childElementCount - this.maxRows;
    while (excess-- > 0 && list.firstElementChild) this.forget(list.firstElementChild as HTMLLIElement);
    // Older rows were dropped: history can bring them back.
    if (list.childElementCount >= this.maxRows) this.moreOlder = true;
  }

  private forget(row: HTMLLIElement): void {
    const seq = Number(row.dataset.seq);
    if (row.dataset.seq !== undefined && this.rows.get(seq) === row) this.rows.delete(seq);
    row.remove();
  }

  private scrollToBottom(): void {
    const { scroller } = this.options;
    this.programmaticScroll = true;
    scroller.scrollTop = scroller.scrollHeight;
  }

  private onScroll(): void {
    const { scroller } = this.options;
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= STICK_SLACK_PX;
    if (this.programmaticScroll) {
      this.programmaticScroll = false;
      if (atBottom) return;
    }
    if (atBottom && !this.stuck) {
      this.jumpToNewest();
      return;
    }
    this.stuck = atBottom;
    if (scroller.scrollTop <= LOAD_OLDER_PX && !atBottom) void this.loadOlder();
  }

  private showPill(): void {
    const { pill } = this.options;
    const show = !this.stuck && (this.unseen > 0 || this.stale);
    pill.hidden = !show;
    if (show) pill.textContent = this.unseen > 0 ? `${this.unseen > 999 ? '999+' : this.unseen} new messages ↓` : 'Back to the newest ↓';
  }

  /** Loads a page of older messages above the first row, keeping what the viewer is reading in place. */
  async loadOlder(): Promise<void> {
    if (this.loadingOlder || !this.moreOlder) return;
    const { list, scroller, olderButton } = this.options;
    const first = this.firstSeq();
    if (!Number.isFinite(first) || first <= 1) { this.moreOlder = false; olderButton.hidden = true; return; }
    this.loadingOlder = true;
    olderButton.disabled = true;
    try {
      const page = await this.options.loadOlder(first, HISTORY_PAGE);
      this.moreOlder = page.more;
      const withdrawn = new Set(page.msgs.filter((m) => m.kind === 'retract' && m.target !== undefined).map((m) => m.target!));
      const older = page.msgs.filter((m) => m.seq < first && !NOT_ROWS.has(m.kind) && !m.deleted && !withdrawn.has(m.seq));
      if (older.length === 0) return;
      const heightBefore = scroller.scrollHeight;
      const topBefore = scroller.scrollTop;
      list.prepend(this.fragmentOf(older.map((message) => ({ kind: 'msg' as const, message }))));
      this.programmaticScroll = true;
      scroller.scrollTop = topBefore + (scroller.scrollHeight - heightBefore);
      // Keep the DOM bounded: the newest rows go, and come back when the viewer returns to the bottom.
      let excess = list.childElementCount - this.maxRows;
      if (excess > 0) {
        this.stuck = false;
        this.stale = true;
        while (excess-- > 0 && list.lastElementChild) this.forget(list.lastElementChild as HTMLLIElement);
        this.showPill();
      }
    } catch (error) {
      this.options.onLoadError(error);
    } finally {
      this.loadingOlder = false;
      olderButton.disabled = false;
      this.showOlderButton();
    }
  }
}

function gapText(gap: Gap): string {
  const count = gap.to - gap.from + 1;
  return count === 1 ? `1 message could not be delivered (#${gap.from})` : `${count} messages could not be delivered (#${gap.from}–${gap.to})`;
}
