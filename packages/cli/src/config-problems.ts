import type { z } from 'zod';
import { CliError } from './cli-error.js';

/** One thing wrong with a config: where (a path into it) and what. */
export interface ConfigProblem {
  path: readonly PropertyKey[];
  message: string;
}

/** `eventTypes[1].schema`, `transports["@acme/mqtt"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, index) => {
      if (typeof key === 'number') return `[${key}]`;
      const name = String(key);
      if (/^[A-Za-z_$][\w$-]*$/.test(name)) return index === 0 ? name : `.${name}`;
      return `[${JSON.stringify(name)}]`;
    })
    .join('');
}

type Issue = z.core.$ZodIssue;

const expectedNames: Record<string, string> = { string: 'a string', record: 'an object', object: 'an object', array: 'an array', number: 'a number', boolean: 'a boolean' };

/**
 * zod's issues as problems. A union that failed is reported through the branch that fits the value's
 * type (its issues are the useful ones), or as the list of types it expected.
 */
export function zodProblems(issues: readonly Issue[], base: readonly PropertyKey[] = []): ConfigProblem[] {
  return issues.flatMap((issue): ConfigProblem[] => {
    const path = [...base, ...issue.path];
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ path: [...path, key], message: 'not a field Herald knows' }));
    if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [{ path, message: issue.message }];
    // A branch refused the value itself (not something inside it): the value is not of that branch's kind.
    const kindOf = (branch: readonly Issue[]) =>
      branch.flatMap((inner): string[] => {
        if (inner.path.length > 0) return [];
        if (inner.code === 'invalid_type') return [expectedNames[inner.expected] ?? inner.expected];
        if (inner.code === 'invalid_value') return inner.values.map((value) => JSON.stringify(value));
        return inner.code === 'custom' ? [inner.message] : [];
      });
    const fitting = issue.errors.find((branch) => kindOf(branch).length === 0);
    if (fitting) return zodProblems(fitting, path);
    return [{ path, message: `expected ${[...new Set(issue.errors.flatMap(kindOf))].join(' or ')}` }];
  });
}

/** A config that cannot run: each problem is a line naming the file and the path. */
export class ConfigError extends CliError {
  override readonly name: string = 'ConfigError';
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super('invalid-config', `${file} is not a valid Herald config (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'})`, 422);
  }

  /** `herald.config.ts: eventTypes[1].schema: cannot read "./missing.json"`, one per problem. */
  lines(): string[] {
    return this.problems.map(({ path, message }) => `${this.file}: ${path.length > 0 ? `${formatPath(path)}: ` : ''}${message}`);
  }
}
