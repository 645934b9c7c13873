import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as errors from './errors.js';
import { tempFolder } from './temp-folder.test-support.js';

/** This module loaded a second time, as another copy of @herald/core in the same process would be. */
async function anotherCopy(): Promise<typeof errors> {
  const copy = join(tempFolder(), 'errors.ts');
  copyFileSync(join(import.meta.dirname, 'errors.ts'), copy);
  return (await import(pathToFileURL(copy).href)) as typeof errors;
}

describe('instanceof across copies of @herald/core', () => {
  it("knows another copy's errors by their classes, and only by them", async () => {
    const copy = await anotherCopy();
    expect(copy.HeraldError).not.toBe(errors.HeraldError);

    const refused = new copy.StoreUnavailableError('unavailable', new Error('connection refused'));
    expect(refused).toBeInstanceOf(errors.StoreUnavailableError);
    expect(refused).toBeInstanceOf(errors.UnavailableError);
    expect(refused).toBeInstanceOf(errors.HeraldError);
    expect(refused).toBeInstanceOf(Error);
    expect(refused).not.toBeInstanceOf(errors.NotFoundError);

    const conflict = new copy.ConflictError('taken');
    expect(conflict).toBeInstanceOf(errors.ConflictError);
    expect(conflict).not.toBeInstanceOf(errors.UnavailableError);
    // And the other way round.
    expect(new errors.ValidationError('bad', [])).toBeInstanceOf(copy.ValidationError);
  });

  it('takes no error for a Herald error by its name alone', () => {
    const lookalike = Object.assign(new Error('taken'), { name: 'ConflictError', code: 'conflict', status: 409 });
    expect(lookalike).not.toBeInstanceOf(errors.ConflictError);
    expect(lookalike).not.toBeInstanceOf(errors.HeraldError);
    expect(null).not.toBeInstanceOf(errors.HeraldError);
    expect('ConflictError').not.toBeInstanceOf(errors.HeraldError);
  });

  it('keeps the class names out of a copy of its fields, as a log line makes', () => {
    const error = new errors.ConflictError('taken');
    expect(Object.getOwnPropertySymbols({ ...error })).toEqual([]);
    expect({ ...error }).toEqual({ name: 'ConflictError', code: 'conflict', status: 409, title: 'Conflict' });
  });
});
