import { availableParallelism } from 'node:os';
import { defineProject, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.js';

// At least two files at a time, where vitest's default is one fewer than the cores (one on two): the time goes to the
// `herald` processes the tests start and to what they wait on, and one file at a time kept little more than one core of
// two busy (alone on two cores, 53 s; two at a time, 40 s). In a group of their own (groupOrder): a run of every
// project from the root cannot mix worker counts in one group. The global setup builds the command the tests run.
const maxWorkers = Math.max(2, availableParallelism() - 1);

export default mergeConfig(shared, defineProject({ test: { name: 'cli', maxWorkers, sequence: { groupOrder: 2 }, globalSetup: ['src/built-cli.test-support.ts'] } }));
