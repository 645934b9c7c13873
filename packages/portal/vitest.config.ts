import { defineProject, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.js';

// Two files at a time, where vitest's default is one fewer than the cores (one on two): the browser tests' time goes to
// what they wait on (a live tail's idle timeout, a 429's Retry-After, a server restart, Herald's answers), not to the
// CPU (on two cores shared with other work: in one file, 151 to 171 s; in four, two at a time, 125 to 146 s). Each file
// starts its own Herald and Chromium; the global setup builds the page they serve once. In a group of their own
// (groupOrder): a run of every project from the root cannot mix worker counts in one group. An `expect.poll` waits
// on the page and on Herald both, on a machine that may be busy: 5 s rather than vitest's 1 s, unless it says.
export default mergeConfig(
  shared,
  defineProject({
    test: { name: 'portal', maxWorkers: 2, sequence: { groupOrder: 3 }, globalSetup: ['src/built-portal.test-support.ts'], expect: { poll: { timeout: 5_000 } } },
  }),
);
