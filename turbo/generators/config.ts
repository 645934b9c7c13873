import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PlopTypes } from '@turbo/gen';

/** Lower-case words joined by `-`: a package directory, an npm name and a `transport` value at once. */
const transportName = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

interface Answers {
  name: string;
  /** A push transport, on the outbox; a streaming one, on the stream session; or a pull one, on the session's `pull`. */
  kind: 'push' | 'stream' | 'pull';
  turbo: { paths: { root: string } };
}

/** Reads a JSON file, lets `change` edit it, and writes it back as the repository formats JSON. */
function editJson(path: string, change: (json: any) => void): string {
  const json = JSON.parse(readFileSync(path, 'utf8'));
  change(json);
  writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`);
  return path;
}

/**
 * `pnpm turbo gen transport` (or `pnpm turbo gen transport --args <name> <push|stream|pull>`): a new transport
 * package, packages/<name>, that passes the testkit's suites as it is, ready to be made into the real thing.
 */
export default function generator(plop: PlopTypes.NodePlopAPI): void {
  // The ranges of the third-party packages every transport uses, as the outbox package has them: no drift.
  const here = plop.getPlopfilePath(); // the folder of this file
  const repository = resolve(here, '../..');
  const outbox = JSON.parse(readFileSync(join(repository, 'packages/outbox/package.json'), 'utf8'));
  const ranges = { zod: outbox.dependencies.zod, tsx: outbox.devDependencies.tsx, vitest: outbox.devDependencies.vitest };

  plop.setGenerator('transport', {
    description: 'A new transport package (push, on @herald/outbox; stream or pull, on the stream session of @herald/core), with its suites',
    prompts: [
      {
        type: 'input',
        name: 'name',
        message: 'Name of the transport (its package is @herald/<name>, e.g. mqtt):',
        validate: (name: string) => transportName.test(name) || 'lower-case letters and digits, words joined by "-" (e.g. mqtt, long-poll)',
      },
      {
        type: 'list',
        name: 'kind',
        message: 'What kind of transport?',
        choices: [
          { name: 'push: Herald sends each event to a destination (a queue, email...): durable, retried, replayable', value: 'push' },
          { name: 'stream: clients hold a connection open and receive events over it', value: 'stream' },
          { name: 'pull: clients ask for the events after a position, and a request waits for the first ones', value: 'pull' },
        ],
      },
    ],
    actions: (data) => {
      const answers = data as Answers;
      const root = answers.turbo.paths.root;
      const destination = join(root, 'packages', answers.name);
      if (existsSync(destination)) throw new Error(`packages/${answers.name} exists already`);
      Object.assign(data as object, { ranges, push: answers.kind === 'push', pull: answers.kind === 'pull' });
      const templates = join(here, 'templates');
      return [
        { type: 'addMany', destination, base: join(templates, 'common'), templateFiles: join(templates, 'common/**/*'), globOptions: { dot: true } },
        { type: 'addMany', destination, base: join(templates, answers.kind), templateFiles: join(templates, `${answers.kind}/**/*`) },
        { type: 'add', path: join(root, '.changeset/{{name}}-transport.md'), templateFile: join(templates, 'changeset.md.hbs') },
        () => editJson(join(root, 'tsconfig.json'), (tsconfig) => tsconfig.references.push({ path: `packages/${answers.name}` })),
        // The packaging test packs every public package it depends on.
        () =>
          editJson(join(root, 'tests/packaging/package.json'), (manifest) => {
            const devDependencies = { ...manifest.devDependencies, [`@herald/${answers.name}`]: 'workspace:*' };
            manifest.devDependencies = Object.fromEntries(Object.entries(devDependencies).sort(([a], [b]) => a.localeCompare(b)));
          }),
        () => `next: pnpm install, then pnpm --filter @herald/${answers.name} test; docs/guides/writing-a-transport.md says what to change`,
      ];
    },
  });
}
