import { defineProject, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.js';

// One file at a time: the suite's SIGKILL case starts Herald processes of its own and must finish within its
// 60 s, which the other file's 1,000-event runs would share the machine's two cores with.
export default mergeConfig(shared, defineProject({ test: { name: 'nats', fileParallelism: false } }));
