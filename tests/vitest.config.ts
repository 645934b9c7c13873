import { availableParallelism } from 'node:os';
import { defineProject, mergeConfig } from 'vitest/config';
import shared from '../vitest.shared.js';

// At least two files at a time, where vitest's default is one fewer than the cores (one on two): these tests mostly
// wait (nodes starting, stopping, leases running out), and turbo has started them last in `pnpm test`, alone at the
// end: one file at a time left a core idle for minutes (203 s; two at a time, 118 s). In a group of their own
// (groupOrder): a run of every project from the root cannot mix worker counts in one group.
const maxWorkers = Math.max(2, availableParallelism() - 1);

export default mergeConfig(shared, defineProject({ test: { name: 'integration', include: ['src/**/*.test.ts'], maxWorkers, sequence: { groupOrder: 1 } } }));
