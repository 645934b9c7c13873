import { defineProject, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.js';

// One file at a time: the broker-restart case stops RabbitMQ, which the other files' cases use.
export default mergeConfig(shared, defineProject({ test: { name: 'amqp', fileParallelism: false } }));
