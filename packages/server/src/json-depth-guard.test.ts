import { describe, expect, it } from 'vitest';
import { nestsDeeperThan } from './json-depth-guard.js';

const deeper = (text: string, max: number) => nestsDeeperThan(Buffer.from(text), max);

describe('nestsDeeperThan', () => {
  it('counts arrays and objects together', () => {
    expect(deeper('{"a":[{"b":[1]}]}', 4)).toBe(false);
    expect(deeper('{"a":[{"b":[1]}]}', 3)).toBe(true);
    expect(deeper('[[],[],[[]]]', 3)).toBe(false);
    expect(deeper('[[],[],[[[]]]]', 3)).toBe(true);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    expect(deeper('{"a":"[[[[{{{{"}', 1)).toBe(false);
    expect(deeper('{"a":"\\"[[[[","b":"\\\\"}', 1)).toBe(false);
    expect(deeper('{"a":"\\\\",  "b":[[1]]}', 2)).toBe(true);
    expect(deeper('["é[[[", "ü"]', 1)).toBe(false);
  });
});
