import { describe, expect, it } from 'vitest';
import { CompactMultimap } from '../../src/gateway/compact-multimap.js';

describe('compact multimap', () => {
  it('answers for a key with no value, one value and several values alike', () => {
    const map = new CompactMultimap<string, string>();
    expect(map.count('u1')).toBe(0);
    expect(map.valuesOf('u1')).toEqual([]);

    map.add('u1', 'a');
    expect(map.count('u1')).toBe(1);
    expect(map.has('u1', 'a')).toBe(true);
    expect(map.has('u1', 'b')).toBe(false);
    expect(map.valuesOf('u1')).toEqual(['a']);

    map.add('u1', 'b');
    map.add('u1', 'c');
    expect(map.count('u1')).toBe(3);
    expect(map.has('u1', 'b')).toBe(true);
    expect(map.valuesOf('u1')).toEqual(['a', 'b', 'c']);
    expect(map.count('u2')).toBe(0);
  });

  it('adds a value once', () => {
    const map = new CompactMultimap<string, string>();
    map.add('u1', 'a');
    map.add('u1', 'a');
    expect(map.count('u1')).toBe(1);
    map.add('u1', 'b');
    map.add('u1', 'b');
    expect(map.valuesOf('u1')).toEqual(['a', 'b']);
  });

  it('deletes values down to none, and says whether the key had the value', () => {
    const map = new CompactMultimap<string, string>();
    map.add('u1', 'a');
    map.add('u1', 'b');
    expect(map.delete('u1', 'x')).toBe(false);
    expect(map.delete('u2', 'a')).toBe(false);
    expect(map.delete('u1', 'a')).toBe(true);
    expect(map.valuesOf('u1')).toEqual(['b']);
    expect(map.delete('u1', 'a')).toBe(false);
    map.add('u1', 'c');
    expect(map.valuesOf('u1')).toEqual(['b', 'c']);
    expect(map.delete('u1', 'c')).toBe(true);
    expect(map.delete('u1', 'b')).toBe(true);
    expect(map.count('u1')).toBe(0);
    expect(map.has('u1', 'b')).toBe(false);
  });

  it('visits every value without a copy, and hands out copies that stay valid while the key changes', () => {
    const map = new CompactMultimap<string, object>();
    const [a, b] = [{}, {}];
    const visited: object[] = [];
    map.forEach('k', (value) => visited.push(value));
    map.add('k', a);
    map.forEach('k', (value) => visited.push(value));
    map.add('k', b);
    map.forEach('k', (value) => visited.push(value));
    expect(visited).toEqual([a, a, b]);

    for (const value of map.valuesOf('k')) map.delete('k', value);
    expect(map.count('k')).toBe(0);
  });
});
