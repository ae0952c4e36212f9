/**
 * The codec reads client frames into strings that are Unicode text, so that whatever the server
 * echoes or stores encodes as valid UTF-8 in msgpack (docs/protocol.md, section 3).
 */
import { describe, expect, it } from 'vitest';
import { decodeJson, decodeMsgpack, encodeMsgpack } from '../../src/shared/codec/codec.js';
import { excerpt, fail } from '../../src/shared/errors.js';

const LONE_SURROGATE = /\p{Cs}/u;

describe('JSON frames', () => {
  it.each([
    ['a lone high surrogate escape in a value', '{"t":"send","text":"\\ud800"}'],
    ['a lone low surrogate escape in a value', '{"t":"send","text":"a\\udfffb"}'],
    ['a lone surrogate escape in a key', '{"\\ud83d":1,"t":"ping"}'],
    ['a lone surrogate escape deep inside', `{"t":"join","room":${'['.repeat(5000)}"\\ud800"${']'.repeat(5000)}}`],
  ])('%s is bad_frame', (_name, text) => {
    expect(() => decodeJson(Buffer.from(text))).toThrow(expect.objectContaining({ code: 'bad_frame' }));
  });

  it('a surrogate pair escape and an escaped backslash before "ud800" are fine', () => {
    expect(decodeJson(Buffer.from('{"t":"send","text":"\\ud83d\\ude00 C:\\\\ud800"}'))).toEqual({ t: 'send', text: '😀 C:\\ud800' });
  });

  it('the message of a JSON syntax error holds no half of a surrogate pair', () => {
    for (const text of ['😀{"t":"join"}', '{"t":😀}', `${'x'.repeat(61)}😀😀😀`]) {
      try {
        decodeJson(Buffer.from(text));
        expect.unreachable();
      } catch (error) {
        expect((error as Error).message).not.toMatch(LONE_SURROGATE);
      }
    }
  });
});

describe('msgpack frames', () => {
  it('bytes of a string that are not UTF-8 are read as U+FFFD', () => {
    expect(decodeMsgpack(Buffer.from([0xa3, 0xed, 0xa0, 0x80]))).not.toMatch(LONE_SURROGATE);
    expect(decodeMsgpack(encodeMsgpack({ t: 'ping' }))).toEqual({ t: 'ping' });
  });
});

describe('client input quoted in error messages', () => {
  it('is cut without splitting a surrogate pair', () => {
    expect(excerpt(`a${'😀'.repeat(20)}`, 4)).toBe('a😀\uFFFD');
    expect(fail.unknown_type(`x${'😀'.repeat(40)}`).message).not.toMatch(LONE_SURROGATE);
    expect(fail.unknown_type('\ud800').message).toBe("unknown frame type '\uFFFD'");
  });
});
