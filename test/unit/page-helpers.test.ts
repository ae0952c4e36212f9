/** The pages' pure helpers: what they read from a URL, and what they say in words. */
import { describe, expect, it } from 'vitest';
import { ClientError } from '../../src/client/roomcast-client.js';
import { MAX_DELAY_MS, parseDelayMs, readPageParams } from '../../src/web/ui/page-params.js';
import { durationInWords, sendErrorInWords } from '../../src/web/ui/words.js';

const at = (href: string) => new URL(href) as unknown as Location;

describe('page parameters', () => {
  it('reads the room and the delay from the query and the token from the fragment only', () => {
    expect(readPageParams(at('http://gw/?room=stage-2&delay=4500#token=abc.def.ghi'))).toEqual({
      room: 'stage-2', roomProblem: null, delayMs: 4500, token: 'abc.def.ghi',
    });
    expect(readPageParams(at('http://gw/?token=in-the-query')).token).toBeNull();
    expect(readPageParams(at('http://gw/'))).toMatchObject({ room: 'lobby', delayMs: 0, token: null });
  });

  it('falls back to lobby for a bad room id, and says so', () => {
    expect(readPageParams(at('http://gw/?room=%3Cscript%3E'))).toMatchObject({ room: 'lobby', roomProblem: "'<script>' is not a room id; showing 'lobby'" });
  });

  it('takes a delay of 0 to two minutes in whole ms, anything else as 0', () => {
    expect([parseDelayMs('5000'), parseDelayMs('2500.4'), parseDelayMs('-1'), parseDelayMs('soon'), parseDelayMs(''), parseDelayMs(null)]).toEqual([5000, 2500, 0, 0, 0, 0]);
    expect(parseDelayMs('99999999')).toBe(MAX_DELAY_MS);
  });
});

describe('words', () => {
  it('says durations the way people do', () => {
    expect([1, 45_000, 90_000, 600_000, 7_200_000, 3 * 86_400_000].map(durationInWords))
      .toEqual(['1 second', '45 seconds', '2 minutes', '10 minutes', '2 hours', '3 days']);
  });

  it('says every refusal a viewer can meet in words, slow mode with the wait when it is known', () => {
    const says = (code: ConstructorParameters<typeof ClientError>[0], waitMs: number | null = null) => sendErrorInWords(new ClientError(code, 'raw'), waitMs);
    expect(says('muted')).toMatch(/muted/);
    expect(says('banned')).toMatch(/banned/);
    expect(says('rate_limited')).toMatch(/too fast/);
    expect(says('slow_mode', 42_000)).toBe('Slow mode is on: you can send again in 42 seconds.');
    expect(says('slow_mode')).toBe('Slow mode is on: wait a little before sending again.');
    expect(says('overloaded')).toMatch(/busy/);
  });
});
